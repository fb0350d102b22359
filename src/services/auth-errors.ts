/**
 * A token or assertion failed one named check. `code` says which (stable, for integrators);
 * `description` says it to a person, never with key material. The token endpoint renders it in
 * the RFC 6749 §5.2 shape, protected routes as a 401 problem.
 */
export class AuthCheckError extends Error {
  constructor (
    readonly code: string,
    readonly description: string,
    /** the RFC 6749 error this maps to at the token endpoint */
    readonly oauthError: 'invalid_client' | 'invalid_request' | 'invalid_scope' | 'unsupported_grant_type' | 'invalid_grant' = 'invalid_client'
  ) {
    super(description)
    this.name = 'AuthCheckError'
  }
}

/** Coordination between processes sharing a store: named leases and claim-once markers (replay guards). */

export interface LeaseStore {
  /** holds or renews the named lease for `owner` for ttlMs; false while another owner holds it */
  holdLease(name: string, owner: string, ttlMs: number): Promise<boolean>
  /**
   * Marks `id` used within `namespace` for `ttlMs`; true the first time, false on every later
   * call until it expires — atomically, across every process sharing the store (replay guard).
   */
  claimOnce(namespace: string, id: string, ttlMs: number): Promise<boolean>
}

import { createHmac } from 'node:crypto'
import { ProblemError } from '../lib/problem.js'

/**
 * Identifiers of SPEC §3, and the keyed hash that stands for a person or organization
 * everywhere an identifier would otherwise be kept (Decree 13/2023/NĐ-CP).
 */

/** Province codes of birth registration used in personal identification numbers (Circular 59/2021/TT-BCA). */
export const PROVINCE_CODES: ReadonlySet<string> = new Set([
  '001', '002', '004', '006', '008', '010', '011', '012', '014', '015', '017', '019', '020', '022',
  '024', '025', '026', '027', '030', '031', '033', '034', '035', '036', '037', '038', '040', '042',
  '044', '045', '046', '048', '049', '051', '052', '054', '056', '058', '060', '062', '064', '066',
  '067', '068', '070', '072', '074', '075', '077', '079', '080', '082', '083', '084', '086', '087',
  '089', '091', '092', '093', '094', '095', '096'
])

export type SubjectKind = 'citizen' | 'organization'

export interface Subject { kind: SubjectKind, id: string }

/** Why an identifier is not acceptable, or undefined when it is. */
export function citizenIdProblem (id: string): string | undefined {
  if (!/^[0-9]{12}$/.test(id)) return 'a personal identification number is exactly 12 digits'
  if (!PROVINCE_CODES.has(id.slice(0, 3))) return `digits 1–3 (${id.slice(0, 3)}) are not a province code of birth registration`
  return undefined
}

export function organizationIdProblem (id: string): string | undefined {
  if (!/^[0-9]{10}(-[0-9]{3})?$/.test(id)) return 'an enterprise/tax code is 10 digits, or 10 digits, "-" and 3 digits for a branch'
  return undefined
}

export function subjectProblem (subject: Subject): string | undefined {
  return subject.kind === 'citizen' ? citizenIdProblem(subject.id) : organizationIdProblem(subject.id)
}

/** HMAC-SHA-256 of kind and identifier under the configured pepper, hex: what keys, logs and audit events carry. */
export function subjectHash (pepper: string, subject: Subject): string {
  return createHmac('sha256', pepper).update(`${subject.kind}:${subject.id.normalize('NFC')}`).digest('hex')
}

/**
 * The keyed hash of a subject whose identifier is acceptable; otherwise a problem naming
 * /subject/id (422 where the identifier is data to act on, 400 where it is a search filter).
 */
export function checkedSubjectHash (pepper: string, subject: Subject, status: 400 | 422 = 422): string {
  const problem = subjectProblem(subject)
  if (problem) throw new ProblemError(status, 'invalid_subject', `subject.id: ${problem}`, { errors: [{ in: 'body', pointer: '/subject/id', detail: problem }] })
  return subjectHash(pepper, subject)
}

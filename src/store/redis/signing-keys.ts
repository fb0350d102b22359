/**
 * The gateway's signing keys in Redis. Keys (tag {signing-keys}):
 *   {signing-keys}  hash: revision, keys (JSON)
 */
import type { SigningKeySetRecord, SigningKeyStore } from '../signing-keys.js'
import type { RedisConnection } from './connection.js'

/** compare-and-set of the signing key set. KEYS: the set. ARGV: expected revision, keys JSON. */
const PUT_SIGNING_KEYS = `
local current = tonumber(redis.call('HGET', KEYS[1], 'revision') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'revision', tonumber(ARGV[1]) + 1, 'keys', ARGV[2])
return 1`

export class RedisSigningKeyStore implements SigningKeyStore {
  private readonly putScript: (...args: string[]) => Promise<number>

  constructor (private readonly redis: RedisConnection) {
    this.putScript = redis.script('signingKeysPut', PUT_SIGNING_KEYS, 1)
  }

  private get setKey (): string { return this.redis.key('signing-keys') }

  async getSigningKeys (): Promise<SigningKeySetRecord | undefined> {
    const [revision, keys] = await this.redis.run(async () => await this.redis.client.hmget(this.setKey, 'revision', 'keys'))
    if (revision === null || revision === undefined || keys === null || keys === undefined) return undefined
    return { revision: Number(revision), keys: JSON.parse(keys) }
  }

  async putSigningKeys (keys: SigningKeySetRecord['keys'], expectedRevision: number): Promise<boolean> {
    // compare-and-set in one script: two rotations racing cannot both replace the key set
    const done = await this.redis.run(async () => await this.putScript(this.setKey, String(expectedRevision), JSON.stringify(keys)))
    return done === 1
  }
}

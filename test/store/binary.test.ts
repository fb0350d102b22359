import t from 'tap'
import { monotonicFactory } from 'ulid'
import { bytesToHex, bytesToUlid, hexToBytes, isHex, isUlid, ulidToBytes } from '../../src/store/redis/binary.js'

t.test('a ULID is 16 bytes and back, and bytes sort as the ids do', async (t) => {
  const ulid = monotonicFactory()
  const ids = [ulid(0), ulid(1), ...Array.from({ length: 200 }, (_, i) => ulid(Date.now() + (i % 7) * 1000)), '7ZZZZZZZZZZZZZZZZZZZZZZZZZ', '00000000000000000000000000']
  t.same(ids.map((id) => ulidToBytes(id).length), ids.map(() => 16))
  t.same(ids.map((id) => bytesToUlid(ulidToBytes(id))), ids)
  const byString = [...ids].sort()
  const byBytes = [...ids].sort((a, b) => Buffer.compare(ulidToBytes(a), ulidToBytes(b)))
  t.same(byBytes, byString)
})

t.test('a ULID prefix is a range bound in bytes as it is in text', async (t) => {
  const ulid = monotonicFactory()
  const ids = Array.from({ length: 300 }, (_, i) => ulid(1_700_000_000_000 + i * 37))
  const wrong: string[] = []
  for (const id of ids.filter((_, i) => i % 10 === 0)) {
    for (const length of [1, 5, 10, 13, 25, 26]) {
      const prefix = id.slice(0, length)
      const bound = ulidToBytes(prefix)
      for (const other of ids) {
        if ((Buffer.compare(ulidToBytes(other), bound) >= 0) !== (other >= prefix)) wrong.push(`${other} vs ${prefix}`)
      }
    }
  }
  t.same(wrong, [])
})

t.test('only canonical forms convert', async (t) => {
  t.ok(isUlid('01J00000AB0000000000000001'))
  t.notOk(isUlid('01j00000ab0000000000000001'), 'lower case would come back upper case')
  t.notOk(isUlid('81J00000AB0000000000000001'), 'more than 128 bits')
  t.notOk(isUlid('01J00000AB000000000000000I'))
  t.throws(() => ulidToBytes('D1'))
  t.ok(isHex('ab'.repeat(32), 32))
  t.notOk(isHex('AB'.repeat(32)), 'upper case would come back lower case')
  t.notOk(isHex('abc'))
  t.notOk(isHex('ab', 32))
  t.equal(bytesToHex(hexToBytes('00ff10')), '00ff10')
  t.throws(() => hexToBytes('s1'))
})

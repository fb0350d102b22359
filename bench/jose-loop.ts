import { randomUUID } from 'node:crypto'
import { generateKeyPair, jwtVerify, SignJWT } from 'jose'

/**
 * The token endpoint's baseline: jose verifying an EdDSA client assertion and signing an EdDSA
 * access token, in a loop, for N seconds (argv), one core. Prints {opsPerSecond}.
 */
const seconds = Number(process.argv[2] ?? 3)
const agency = await generateKeyPair('EdDSA')
const gateway = await generateKeyPair('EdDSA')
const now = Math.floor(Date.now() / 1000)
const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'EdDSA', kid: 'a' }).setIssuer('A').setSubject('A').setAudience('G').setIssuedAt(now).setExpirationTime(now + 300).sign(agency.privateKey)
let ops = 0
const end = Date.now() + seconds * 1000
while (Date.now() < end) {
  for (let i = 0; i < 100; i++) {
    await jwtVerify(assertion, agency.publicKey, { audience: 'G', algorithms: ['EdDSA'] })
    await new SignJWT({ scope: 'documents:reuse', jti: randomUUID() }).setProtectedHeader({ alg: 'EdDSA', kid: 'g', typ: 'at+jwt' }).setIssuer('G').setSubject('A').setAudience('G').setIssuedAt(now).setExpirationTime(now + 300).sign(gateway.privateKey)
    ops++
  }
}
process.stdout.write(JSON.stringify({ opsPerSecond: ops / seconds }) + '\n')

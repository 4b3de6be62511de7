// Package keys loads, checks and publishes jwtd's signing keys.
//
// A Key pairs a key id (kid) with exactly one JWS algorithm: the algorithm is
// pinned to the key, never taken from a token. Every constructor here refuses
// keys that are unsafe to sign or verify with (short HMAC secrets, small or
// ROCA-weak RSA moduli, curves that do not match the algorithm, keys marked for
// encryption), so the rest of jwtd can trust any *Key it holds.
package keys

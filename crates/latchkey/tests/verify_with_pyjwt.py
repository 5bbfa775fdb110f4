"""Verifies a latchkey access token with PyJWT, using nothing but the published JWKS.

Usage: verify_with_pyjwt.py JWKS_URL TOKEN ISSUER AUDIENCE
Prints the token's sid on success; exits non-zero when the token does not verify.
"""
import sys

import jwt

jwks_url, token, issuer, audience = sys.argv[1:5]
signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    signing_key,
    algorithms=["EdDSA", "ES256", "RS256"],
    audience=audience,
    issuer=issuer,
    options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
)
header = jwt.get_unverified_header(token)
assert header["typ"] == "at+jwt", header
print(claims["sid"])

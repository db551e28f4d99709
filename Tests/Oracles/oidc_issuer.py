"""An OpenID Connect issuer for the sign-in tests: PyPI oidc-provider-mock on 127.0.0.1 and a
free port, requiring a nonce. Prints "Listening on http://127.0.0.1:PORT" and serves until killed.

Usage: oidc_issuer.py [EMAIL=NAME ...]   (predefined users: sub and email EMAIL, name NAME)
"""
import sys

import oidc_provider_mock
import werkzeug.serving


def main():
    users = []
    for spec in sys.argv[1:]:
        email, _, name = spec.partition("=")
        users.append(oidc_provider_mock.User(sub=email, claims={"email": email, "email_verified": True, "name": name}))
    app = oidc_provider_mock.app(require_nonce=True, user_claims=users)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    print(f"Listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

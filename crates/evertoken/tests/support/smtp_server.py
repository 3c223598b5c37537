"""A real SMTP server for evertoken's email-alert tests (aiosmtpd).

Writes every delivered message to MAILDIR/<n>.json as
{"mail_from", "rcpt_tos", "content", "tls", "login"} and prints READY on stdout
once it accepts connections. With --cert/--key it offers STARTTLS and refuses
mail before it; with --auth USER:PASS it requires that login (over TLS only).
Runs until killed or until stdin closes.
"""

import argparse
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, maildir):
        self.maildir = maildir
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        login = getattr(session, "auth_data", None)
        if isinstance(login, LoginPassword):
            login = login.login.decode("utf-8", "replace")
        elif not isinstance(login, str):
            login = None
        doc = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.content.decode("utf-8", "replace"),
            "tls": getattr(session, "ssl", None) is not None,
            "login": login,
        }
        tmp = os.path.join(self.maildir, f".{n}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, os.path.join(self.maildir, f"{n}.json"))
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", help="USER:PASS required (over TLS)")
    a = p.parse_args()
    os.makedirs(a.maildir, exist_ok=True)

    kwargs = {}
    if a.cert:
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = True
    if a.auth:
        user, _, password = a.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, auth_data=user if ok else None)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
    controller = Controller(Saver(a.maildir), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

"""The running Alertmanager config: ops/alertmanager/alertmanager.yml with this deployment's SMTP
server (the SMTP_* settings the notification jobs use) and recipients filled in.

Alertmanager reads no environment variables, so the checked-in file carries development values
and `render` writes the copy Alertmanager runs with. A config that could not deliver (no
recipient, no SMTP host) is refused here, at start-up, rather than dropping alerts later.

    python -m ops.alerting render --out var/alertmanager/alertmanager.yml
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from domain.platform.settings import Settings, get_settings

SOURCE = Path(__file__).resolve().parent / "alertmanager"


class AlertingConfigError(ValueError):
    """The Alertmanager config cannot be rendered from these settings."""


def _recipients(settings: Settings) -> list[str]:
    return [a.strip() for a in settings.alert_email_to.split(",") if a.strip()]


def _smtp_globals(settings: Settings) -> dict[str, Any]:
    if not settings.smtp_host.strip():
        raise AlertingConfigError("SMTP_HOST is empty: alert e-mails would have no server")
    security = settings.smtp_security
    # Alertmanager speaks implicit TLS only on port 465; STARTTLS is `smtp_require_tls`.
    if security == "tls" and settings.smtp_port != 465:
        raise AlertingConfigError(
            f"SMTP_SECURITY=tls needs SMTP_PORT=465 for Alertmanager (got {settings.smtp_port});"
            " use SMTP_SECURITY=starttls on a submission port"
        )
    smtp: dict[str, Any] = {
        "smtp_smarthost": f"{settings.smtp_host}:{settings.smtp_port}",
        "smtp_from": settings.smtp_sender,
        "smtp_require_tls": security == "starttls",
    }
    if settings.smtp_user:
        smtp["smtp_auth_username"] = settings.smtp_user
        smtp["smtp_auth_password"] = settings.smtp_password.get_secret_value()
    return smtp


def build(settings: Settings, *, templates_dir: Path) -> dict[str, Any]:
    """The checked-in config with this deployment's SMTP server and recipients."""
    recipients = _recipients(settings)
    if not recipients:
        raise AlertingConfigError(
            "ALERT_EMAIL_TO is empty: set the on-call address(es), comma-separated"
        )
    config: dict[str, Any] = yaml.safe_load((SOURCE / "alertmanager.yml").read_text())
    config["global"].update(_smtp_globals(settings))
    config["templates"] = [str(templates_dir / "*.tmpl")]
    for receiver in config["receivers"]:
        receiver["email_configs"] = [{**receiver["email_configs"][0], "to": ", ".join(recipients)}]
        if settings.alert_webhook_url:
            receiver["webhook_configs"][0]["url"] = settings.alert_webhook_url
        else:
            del receiver["webhook_configs"]
    return config


def render(settings: Settings, *, out: Path) -> Path:
    """Write the config and its templates beside it (mode 0600: it may hold the SMTP password)."""
    templates_dir = out.parent / "templates"
    config = build(settings, templates_dir=templates_dir)
    templates_dir.mkdir(parents=True, exist_ok=True)
    for template in (SOURCE / "templates").glob("*.tmpl"):
        shutil.copyfile(template, templates_dir / template.name)
    base = settings.alert_runbook_base_url.replace("{{", "").replace("}}", "")
    (templates_dir / "links.tmpl").write_text(
        f'{{{{ define "gaveurs.runbook_base" }}}}{base}{{{{ end }}}}\n'
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# Written by `python -m ops.alerting render`; edit ops/alertmanager/.\n")
        yaml.safe_dump(config, handle, sort_keys=False)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.alerting", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render_cmd = commands.add_parser("render", help="write the running Alertmanager config")
    render_cmd.add_argument("--out", type=Path, default=Path("var/alertmanager/alertmanager.yml"))
    args = parser.parse_args(argv)
    try:
        path = render(get_settings(), out=args.out)
    except AlertingConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

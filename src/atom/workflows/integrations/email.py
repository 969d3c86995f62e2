"""`send_email` over SMTP with STARTTLS and AUTH (aiosmtplib).

Settings name the server, the sender, the login and the secret holding the password; STARTTLS is
required by default and the server certificate is verified (against ATOM_SMTP_CA_FILE when set).
Idempotency: SMTP has no idempotency key; the Message-ID is derived from the step's key, so a
redelivered step sends a message with the same Message-ID, which mail stores and clients use to
recognise duplicates.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, field_validator

from atom.workflows.actions import ActionContext, WorkflowAction
from atom.workflows.integrations.errors import (
    IntegrationAuthError,
    IntegrationNotConfigured,
    IntegrationRequestError,
    IntegrationUnavailable,
)

INTEGRATION = "email"
_ADDRESS = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def _check_address(value: str) -> str:
    _, address = parseaddr(value)
    if not _ADDRESS.match(address) or "\n" in value or "\r" in value:
        raise ValueError(f"{value!r} is not an email address")
    return value


def message_id(idempotency_key: str, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "atom.local"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


class SendEmailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(min_length=1, max_length=50)
    cc: list[str] = Field(default_factory=list, max_length=50)
    bcc: list[str] = Field(default_factory=list, max_length=50)
    subject: str = Field(min_length=1, max_length=998)
    text: str = Field(max_length=1_000_000)
    html: str | None = Field(default=None, max_length=2_000_000)
    reply_to: str | None = None

    @field_validator("to", "cc", "bcc", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("to", "cc", "bcc")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_check_address(v) for v in value]

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return _check_address(value) if value is not None else None

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("the subject is one line")
        return value


def build_message(params: SendEmailParams, sender: str, key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(params.to)
    if params.cc:
        message["Cc"] = ", ".join(params.cc)
    if params.reply_to:
        message["Reply-To"] = params.reply_to
    message["Subject"] = params.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(key, sender)
    message.set_content(params.text)
    if params.html is not None:
        message.add_alternative(params.html, subtype="html")
    return message


async def send_email(params: SendEmailParams, ctx: ActionContext) -> dict[str, Any]:
    settings = ctx.settings
    if not settings.smtp_host or not settings.smtp_from:
        raise IntegrationNotConfigured(
            "email: set ATOM_SMTP_HOST and ATOM_SMTP_FROM to send email.",
            integration=INTEGRATION,
            details={"setting": "ATOM_SMTP_HOST" if not settings.smtp_host else "ATOM_SMTP_FROM"},
        )
    password = None
    if settings.smtp_username:
        password = await ctx.secret(
            settings.smtp_password_secret, integration=INTEGRATION, setting="ATOM_SMTP_PASSWORD_SECRET"
        )
    tls_context = ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    message = build_message(params, settings.smtp_from, ctx.idempotency_key)
    recipients = [parseaddr(a)[1] for a in [*params.to, *params.cc, *params.bcc]]
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        start_tls=settings.smtp_starttls,
        tls_context=tls_context,
        timeout=settings.smtp_timeout_s,
    )
    try:
        async with client:
            if settings.smtp_username and password is not None:
                await client.login(settings.smtp_username, password)
            refused, _ = await client.send_message(message, recipients=recipients)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise IntegrationAuthError(
            f"email: login refused ({exc.code})", integration=INTEGRATION, status=exc.code
        ) from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise IntegrationRequestError(
            "email: every recipient was refused",
            integration=INTEGRATION,
            details={"refused": [str(r) for r in exc.recipients]},
        ) from exc
    except aiosmtplib.SMTPResponseException as exc:
        error_class = IntegrationUnavailable if 400 <= exc.code < 500 else IntegrationRequestError
        raise error_class(
            f"email: the server answered {exc.code} {exc.message}", integration=INTEGRATION, status=exc.code
        ) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise IntegrationUnavailable(
            f"email: cannot deliver to {settings.smtp_host}:{settings.smtp_port} ({type(exc).__name__}: {exc})",
            integration=INTEGRATION,
        ) from exc
    rejected = {addr: f"{r.code} {r.message}" for addr, r in refused.items() if r.code >= 400}
    ctx.log(f"sent to {len(recipients) - len(rejected)} recipients", message_id=message["Message-ID"])
    return {
        "message_id": message["Message-ID"],
        "accepted": [r for r in recipients if r not in rejected],
        "rejected": rejected,
    }


def actions() -> list[WorkflowAction]:
    return [WorkflowAction("send_email", 3, "Send an email over SMTP.", SendEmailParams, send_email)]

"""Where personal data lives, how long it is kept and what deletes it (GET /api/retention).

Built from the settings, so the report says what this deployment does, not what the defaults
would; the README's retention table lists the same stores (tests/api/test_retention.py checks
both). A store no job deletes says so (`deleted_by` None): those are the gaps to know about.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.platform.settings import DAY_S, Settings


@dataclass(frozen=True)
class Store:
    name: str
    where: str
    personal_data: str
    #: How long an item is kept, in seconds; None: until deleted by hand or by an erasure.
    kept_s: int | None
    #: The setting that sets `kept_s`, if any.
    setting: str | None
    #: The job (or mechanism) that deletes expired items; None when nothing does.
    deleted_by: str | None
    note: str = ""


def personal_data_stores(settings: Settings) -> list[Store]:
    """Every store of personal data, with this deployment's retention."""
    days = DAY_S
    return [
        Store(
            "gaveurs",
            "database table gaveurs",
            "gaveurs' names, phone numbers, e-mail addresses",
            None,
            None,
            None,
            "kept while the cooperative works with the gaveur (reference data)",
        ),
        Store(
            "site managers",
            "database table sites",
            "site managers' names, phone numbers, e-mail addresses",
            None,
            None,
            None,
            "reference data",
        ),
        Store(
            "consumer feedback",
            "database table consumer_feedback",
            "consumers' e-mail addresses and comments",
            settings.feedback_retention_days * days,
            "FEEDBACK_RETENTION_DAYS",
            "cleanup_old_jobs",
            "kept for quality follow-up; the search index drops them at its next run, the audit "
            "trail keeps their ids",
        ),
        Store(
            "notification outbox",
            "database table notification_outbox",
            "recipients' addresses and numbers, message bodies",
            settings.outbox_retention_days * days,
            "OUTBOX_RETENTION_DAYS",
            "cleanup_old_jobs",
        ),
        Store(
            "job journal",
            "database table job_journal",
            "every accepted job's message; phones, addresses and texts sealed (PAYLOAD_KEYS)",
            settings.job_retention_s,
            "JOB_RETENTION_S",
            "cleanup_old_jobs",
        ),
        Store(
            "workflow journal",
            "database table workflow_journal",
            "workflow steps' messages; personal fields sealed",
            settings.job_retention_s,
            "JOB_RETENTION_S",
            "cleanup_old_jobs",
            "as long as the job records: past them no workflow can be rebuilt",
        ),
        Store(
            "job records",
            "Redis gaveurs:jobs:job:*",
            "masked arguments, results, errors",
            settings.job_retention_s,
            "JOB_RETENTION_S",
            "Redis expiry",
            "cleanup_old_jobs trims their indexes",
        ),
        Store(
            "queued messages",
            "Redis queues (dramatiq:*)",
            "job payloads until a worker takes them; personal fields sealed",
            None,
            None,
            "the worker's acknowledgement",
            "as long as the job waits",
        ),
        Store(
            "dead letters",
            "Redis dramatiq:*.XQ",
            "failed jobs' payloads; personal fields sealed",
            settings.dead_letter_ttl_ms // 1000,
            "DEAD_LETTER_TTL_MS",
            "broker_maintenance",
        ),
        Store(
            "job results",
            "Redis results backend",
            "results of jobs that store them",
            settings.result_ttl_ms // 1000,
            "RESULT_TTL_MS",
            "Redis expiry",
        ),
        Store(
            "reports and exports",
            "EXPORT_DIR (reports/, csv/)",
            "gaveurs' names and phone numbers in reports",
            settings.export_retention_days * days,
            "EXPORT_RETENTION_DAYS",
            "cleanup_old_jobs",
            "certificates are kept: the ledger's verification reads them",
        ),
        Store(
            "notification files",
            "OUTBOX_DIR (file backend only)",
            "messages as written, with their recipients",
            settings.outbox_retention_days * days,
            "OUTBOX_RETENTION_DAYS",
            "cleanup_old_jobs",
            "as long as the outbox rows; development backend (production sends through SMTP "
            "and the SMS API)",
        ),
        Store(
            "database backups",
            "BACKUP_DIR",
            "a copy of every table above",
            settings.backup_keep * days,
            "BACKUP_KEEP",
            "backup_database",
            "one backup a day, the newest BACKUP_KEEP kept",
        ),
        Store(
            "processing audit trail",
            "database table processing_audit",
            "ids and keyed hashes of data subjects (no address or number)",
            None,
            None,
            None,
            "append-only by design",
        ),
    ]

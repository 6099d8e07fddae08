"""noctis-server serve | migrate | bootstrap"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
from datetime import UTC

from sync_server import migrate
from sync_server.settings import Settings


async def bootstrap_tenant(database_url: str, tenant: str, email: str, password: str) -> tuple[str, str]:
    from sync_server.accounts.service import create_tenant_with_owner
    from sync_server.db import engine_for_job

    async with engine_for_job(database_url) as engine, engine.begin() as conn:
        tenant_id, user_id = await create_tenant_with_owner(conn, tenant, email, password)
    return str(tenant_id), str(user_id)


async def rescore_recent(settings: Settings, hours: float) -> list[str]:
    """The nightly job: first keep a recording for every night the devices heard from in
    the last `hours` slept (sync_server.recordings.nights), then score and store every
    ended recording that changed in that time: it ended, was created, or received
    epochs then, however old the night is (a device back from weeks offline uploads its
    old nights late)."""
    from datetime import datetime, timedelta

    from sqlalchemy import and_, exists, or_, select

    from sync_server.db import devices, engine_for_job, epochs, recordings, transaction
    from sync_server.models import lifecycle
    from sync_server.models.service import ModelStore, load_active_server_model
    from sync_server.predict.service import rescore_recording
    from sync_server.recordings.nights import keep_nights
    from sync_server.recordings.service import OPEN_NIGHT
    from sync_server.tenancy import TenantRepository

    store = ModelStore(settings.registry_dir)
    lines = []
    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    late_epochs = exists().where(
        epochs.c.device_id == recordings.c.device_id,
        epochs.c.start_time >= recordings.c.started_at,  # within the night: its chunks only
        epochs.c.start_time < recordings.c.ended_at,
        epochs.c.received_at >= since,
    )
    due = (
        select(recordings.c.id, recordings.c.tenant_id)
        .join(devices, devices.c.id == recordings.c.device_id)
        .where(
            recordings.c.ended_at <= now,
            or_(
                recordings.c.ended_at >= since,
                recordings.c.created_at >= since,
                and_(devices.c.last_seen_at >= since, late_epochs),  # only devices heard from lately
            ),
        )
        .order_by(recordings.c.ended_at)
    )
    async with engine_for_job(settings.resolved_database_url) as engine:
        async with engine.begin() as conn:
            heard = select(devices.c.id, devices.c.tenant_id).where(devices.c.last_seen_at >= since)
            for device_id, tenant_id in (await conn.execute(heard)).all():
                repo = TenantRepository(conn, tenant_id, actor="job:nights")
                lines += await keep_nights(repo, device_id, since - OPEN_NIGHT)
        async with engine.begin() as conn:
            await load_active_server_model(conn, store)
            shadow = await lifecycle.shadow_version(conn)
            due_recordings = (await conn.execute(due)).all()
        # The shadow version scores the same nights; its predictions are kept, never served.
        # A shadow that does not load is reported and skipped: the active model's scores
        # are the job's purpose.
        models = [store.server]
        if shadow:
            try:
                models.append(lifecycle.load_server_model(store, shadow))
            except lifecycle.LifecycleError as exc:
                lines.append(f"shadow skipped: {exc}")
        for recording_id, tenant_id in due_recordings:
            for model in models:
                # One transaction per recording, which stores in its own: a failure leaves
                # the others stored. A night already scored by a model is read, not scored.
                async with transaction(engine, None, writes=False) as conn:
                    result = await rescore_recording(TenantRepository(conn, tenant_id), engine, model, recording_id)
                lines.append(f"{recording_id} {result.model_version} epochs={result.epochs} new={result.stored}")
    return lines


async def manage_models(
    settings: Settings, action: str, target: str, reason: str, force: bool, tenant: str = "", stop: bool = False
) -> list[str]:
    import getpass
    import uuid

    from sync_server.db import engine_for_job
    from sync_server.models import lifecycle
    from sync_server.models.evaluation import agreement, evaluate
    from sync_server.models.service import ModelStore, active_version

    store = ModelStore(settings.registry_dir)
    actor = f"cli:{getpass.getuser()}"
    try:
        async with engine_for_job(settings.resolved_database_url) as engine, engine.begin() as conn:
            if action == "promote":
                kind = await lifecycle.promote(conn, store, target, actor, reason, force)
                return [f"{target} is now the active {kind} model"]
            if action == "rollback":
                version = await lifecycle.rollback(conn, store, target, actor, reason)
                return [f"{version} is the active {target} model again"]
            if action == "evaluate":
                model = lifecycle.load_server_model(store, target)
                tenant_id = uuid.UUID(tenant) if tenant else None
                lines = (await evaluate(conn, model, tenant_id)).lines()
                active_server = await active_version(conn, "server")
                if active_server is not None and active_server != target:
                    lines.append((await agreement(conn, target, active_server, tenant_id)).line())
                return lines
            if action == "shadow":
                await lifecycle.set_shadow(conn, store, None if stop else target, actor, reason)
                return [f"{target} is scored beside the active server model" if not stop else "shadow stopped"]
            if action == "history":
                return [
                    f"{r['activated_at']:%Y-%m-%d %H:%M:%S} {r['action']:<9} {r['version']:<12} {r['actor']:<20} "
                    f"{r['reason']}"
                    for r in await lifecycle.history(conn, target)
                ]
            active = {kind: await active_version(conn, kind) for kind in ("server", "edge")}
            lines = []
            for kind in ("server", "edge"):
                for version in store.registered_versions(kind):
                    metric = store.manifest(version)["metrics"].get(lifecycle.COMPARED_METRIC)
                    mark = "*" if active[kind] == version else " "
                    lines.append(f"{mark} {kind:<6} {version:<12} {lifecycle.COMPARED_METRIC}={metric:.3f}")
            return lines
    except lifecycle.LifecycleError as exc:
        raise SystemExit(f"refused: {exc}") from exc


async def manage_rollout(
    settings: Settings, tenant: str, version: str, percent: int, change: str, reason: str
) -> list[str]:
    """Release an edge model to a share of a tenant's devices, widen, pause, resume or
    roll back; without any of these, show the rollout and every device's state."""
    import getpass

    from sync_server.db import engine_for_job
    from sync_server.models.service import ModelStore
    from sync_server.ota import rollouts

    store = ModelStore(settings.registry_dir)
    actor = f"cli:{getpass.getuser()}"
    try:
        async with engine_for_job(settings.resolved_database_url) as engine, engine.begin() as conn:
            repo = rollouts.tenant_repository(conn, tenant, actor)
            if change == "rollback":
                row = await rollouts.roll_back(repo, actor, reason)
                return [f"rollout #{row['id']}: every device goes back to {row['version']}"]
            if change in ("pause", "resume"):
                row = await rollouts.set_state(repo, "paused" if change == "pause" else "active")
                return [f"rollout #{row['id']} of {row['version']} is {row['state']}"]
            if version:
                row = await rollouts.release(repo, store, version, percent or 100, actor, reason)
                return [f"rollout #{row['id']}: {row['version']} is offered to {row['percent']} % of the devices"]
            return await rollouts.status(repo, store)
    except rollouts.RolloutError as exc:
        raise SystemExit(f"refused: {exc}") from exc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="noctis-server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="upgrade the database schema to the newest revision")
    boot = commands.add_parser("bootstrap", help="create a tenant and its owner; prints the credentials once")
    boot.add_argument("--tenant", required=True)
    boot.add_argument("--email", required=True)
    boot.add_argument("--password", help="default: a generated one, printed once")
    models = commands.add_parser("models", help="list, promote or roll back model versions (operators)")
    models_actions = models.add_subparsers(dest="action", required=True)
    models_actions.add_parser("list", help="registered versions; * marks the active ones")
    promote = models_actions.add_parser("promote", help="activate a version if it scores at least as well")
    promote.add_argument("target", metavar="VERSION")
    promote.add_argument("--force", action="store_true", help="activate even if it scores lower")
    rollback = models_actions.add_parser("rollback", help="re-activate the previous version of a kind")
    rollback.add_argument("target", metavar="KIND", choices=["server", "edge"])
    history = models_actions.add_parser("history", help="the activation audit trail of a kind")
    history.add_argument("target", metavar="KIND", choices=["server", "edge"])
    shadow = models_actions.add_parser("shadow", help="score a server version beside the active one, never served")
    shadow.add_argument("target", metavar="VERSION", nargs="?", default="")
    shadow.add_argument("--stop", action="store_true", help="stop scoring the shadow version")
    evaluate = models_actions.add_parser("evaluate", help="a server model on the nights people scored (labels)")
    evaluate.add_argument("target", metavar="VERSION")
    evaluate.add_argument("--tenant", default="", help="one tenant's labelled nights (default: every tenant's)")
    rollout = models_actions.add_parser(
        "rollout", help="stage an edge model to a share of one tenant's devices; widen, pause, roll back"
    )
    rollout.add_argument("target", metavar="VERSION", nargs="?", default="", help="release or widen this version")
    rollout.add_argument("--tenant", required=True, help="the tenant's id")
    rollout.add_argument("--percent", type=int, default=0, help="share of the tenant's devices (default 100)")
    change = rollout.add_mutually_exclusive_group()
    for name, what in (
        ("pause", "stop new devices taking it"),
        ("resume", "go on"),
        ("rollback", "back to the model before"),
    ):
        change.add_argument(f"--{name}", dest="change", action="store_const", const=name, default="", help=what)
    for sub in (promote, rollback, shadow, rollout):
        sub.add_argument("--reason", default="")
    rescore = commands.add_parser(
        "rescore", help="score and store recordings that ended, were created or received epochs recently"
    )
    rescore.add_argument("--hours", type=float, default=36.0, help="how far back 'recently' reaches")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        if args.command in ("migrate", "serve", "bootstrap"):
            migrate.upgrade(url)
            migrate.apply_retention(url, settings.retention_days)
        else:  # the operator's everyday commands: quick, and never a schema change by surprise
            migrate.require_current(url)
    except (ValueError, RuntimeError) as exc:  # a setting the operator must change: say which, no traceback
        parser.exit(2, f"{parser.prog}: {exc}\n")
    if args.command == "bootstrap":
        password = args.password or secrets.token_urlsafe(18)
        tenant_id, user_id = asyncio.run(bootstrap_tenant(url, args.tenant, args.email, password))
        print(f"tenant   {args.tenant} ({tenant_id})\nowner    {args.email} ({user_id})\npassword {password}")
        print("Keep the password now: only its argon2id hash is stored.")
    elif args.command == "models" and args.action == "rollout":
        for line in asyncio.run(
            manage_rollout(settings, args.tenant, args.target, args.percent, args.change, args.reason)
        ):
            print(line)
    elif args.command == "models":
        lines = asyncio.run(
            manage_models(
                settings,
                args.action,
                getattr(args, "target", ""),
                getattr(args, "reason", ""),
                getattr(args, "force", False),
                getattr(args, "tenant", ""),
                getattr(args, "stop", False),
            )
        )
        for line in lines:
            print(line)
    elif args.command == "rescore":
        for line in asyncio.run(rescore_recent(settings, args.hours)):
            print(line)
    elif args.command == "serve":
        import uvicorn

        uvicorn.run(
            "sync_server.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
        )


if __name__ == "__main__":
    main()

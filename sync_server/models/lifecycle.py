"""Promote and roll back model versions: operator actions, audited in model_activations.

Models are shared by every tenant, so these are not tenant API routes; operators run
them with `python -m sync_server models …`. A version is activated only once it loads
(a server model also scores a night). On PostgreSQL every worker hears of an activation
as it commits and loads the version at once; otherwise, and as a fallback, within
NOCTIS_MODEL_POLL_SECONDS.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from noctis_contract.night_model import NightModel, sha256_file
from sync_server.db import model_activations
from sync_server.models.evaluation import Evaluation, evaluate
from sync_server.models.service import ModelStore, activate, active_version, load_and_warm
from sync_server.ota import rollouts

COMPARED_METRIC = "kappa4"  # both manifests measure it with the same leave-subjects-out benchmark


class LifecycleError(Exception):
    pass


def _check_loadable(store: ModelStore, version: str, kind: str) -> None:
    directory = store.registry_dir / version
    if kind == "server":
        load_and_warm(directory)  # raises on a bad hash or format, or if it cannot score
        return
    for name, expected in store.manifest(version)["files"].items():
        if sha256_file(directory / name) != expected:
            raise LifecycleError(f"{version}/{name} does not match its manifest")


async def promote(
    conn: AsyncConnection, store: ModelStore, version: str, actor: str, reason: str, force: bool = False
) -> str:
    """Activate a registered version if it is at least as good as the active one."""
    kinds = [kind for kind in ("server", "edge") if version in store.registered_versions(kind)]
    if not kinds:
        raise LifecycleError(f"{version} is not a registered model")
    kind = kinds[0]
    current = await active_version(conn, kind)
    if current == version:
        raise LifecycleError(f"{version} is already the active {kind} model")
    try:
        _check_loadable(store, version, kind)
    except (OSError, ValueError, KeyError) as exc:
        raise LifecycleError(f"{version} does not load: {exc}") from exc
    verdict = f"promoted over {current}"
    if current is not None:
        new_score, old_score, where = await _scores(conn, store, kind, version, current)
        verdict = f"{COMPARED_METRIC} {new_score} vs {old_score} of {current} {where}"
        if not force and (new_score is None or (old_score is not None and new_score < old_score)):
            raise LifecycleError(
                f"{version} scores {COMPARED_METRIC}={new_score} below the active {current} ({old_score}) {where}; "
                "promote with --force and a reason to override"
            )
    await activate(conn, kind, version, actor=actor, reason=reason or verdict)
    if kind == "edge":
        await rollouts.record_fleet(conn, version, current, actor, reason or verdict)
    return kind


async def _scores(
    conn: AsyncConnection, store: ModelStore, kind: str, candidate: str, active: str
) -> tuple[float | None, float | None, str]:
    """The candidate's and the active version's COMPARED_METRIC, and where they come from:
    the tenants' own labelled nights when there are any, else the manifests' benchmark."""
    if kind == "server" and (on_labels := await compare_on_labels(conn, store, candidate, active)):
        new, old = on_labels
        where = f"on {new.nights} labelled nights ({len(new.truth)} epochs)"
        return new.scores[COMPARED_METRIC], old.scores[COMPARED_METRIC], where
    new_score = store.manifest(candidate)["metrics"].get(COMPARED_METRIC)
    old_score = store.manifest(active)["metrics"].get(COMPARED_METRIC)
    return new_score, old_score, "in the manifests' benchmark (no labelled nights)"


def load_server_model(store: ModelStore, version: str) -> NightModel:
    try:
        return load_and_warm(store.registry_dir / version)[0]
    except (OSError, ValueError, KeyError) as exc:
        raise LifecycleError(f"{version} does not load: {exc}") from exc


async def compare_on_labels(
    conn: AsyncConnection, store: ModelStore, candidate: str, active: str
) -> tuple[Evaluation, Evaluation] | None:
    """Both server models on every labelled night, or None while there are none."""
    results = [await evaluate(conn, load_server_model(store, version)) for version in (candidate, active)]
    return (results[0], results[1]) if len(results[0].truth) else None


async def rollback(conn: AsyncConnection, store: ModelStore, kind: str, actor: str, reason: str) -> str:
    """Re-activate the version that was active before the current one was promoted; a
    second rollback goes further back, not forth again."""
    rows = (
        await conn.execute(
            select(model_activations.c.version, model_activations.c.action)
            .where(model_activations.c.kind == kind)
            .order_by(model_activations.c.id)
        )
    ).all()
    if not rows:
        raise LifecycleError(f"no {kind} model has been activated")
    # The activations still in force, oldest first: a rollback undoes the latest of them.
    in_force: list[str] = []
    for version, action in rows:
        if action == "rollback" and in_force:
            in_force.pop()  # what it rolled back from; what it re-activated is now on top
        if not in_force or in_force[-1] != version:
            in_force.append(version)
    current = in_force[-1]
    if len(in_force) < 2:
        raise LifecycleError(f"{current} is the first {kind} model activated: nothing to roll back to")
    previous = in_force[-2]
    try:
        _check_loadable(store, previous, kind)
    except (OSError, ValueError, KeyError) as exc:
        raise LifecycleError(f"cannot roll back to {previous}: it does not load ({exc})") from exc
    await activate(conn, kind, previous, actor=actor, reason=reason or f"rollback from {current}", action="rollback")
    if kind == "edge":  # devices install the older model: the rollout's number is newer
        await rollouts.record_fleet(conn, previous, current, actor, reason or f"rollback from {current}")
    return previous


SHADOW = "shadow"  # the kind of model_activations rows that name the shadow server model


async def shadow_version(conn: AsyncConnection) -> str | None:
    """The server version scored beside the active one and never served, if any."""
    query = (
        select(model_activations.c.version, model_activations.c.action)
        .where(model_activations.c.kind == SHADOW)
        .order_by(model_activations.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return None if row is None or row.action == "stop" else str(row.version)


async def set_shadow(conn: AsyncConnection, store: ModelStore, version: str | None, actor: str, reason: str) -> None:
    """Score version beside the active server model from now on (None: stop). The nightly
    rescore stores its predictions under its own version; they are never served, and
    `models evaluate` compares them with the active model's and with labels."""
    if version is None:
        current = await shadow_version(conn)
        if current is None:
            raise LifecycleError("no shadow model is set")
        await activate(conn, SHADOW, current, actor=actor, reason=reason or "shadow stopped", action="stop")
        return
    if version not in store.registered_versions("server"):
        raise LifecycleError(f"{version} is not a registered server model")
    if version == await active_version(conn, "server"):
        raise LifecycleError(f"{version} is the active server model: shadow another version")
    load_server_model(store, version)
    await activate(conn, SHADOW, version, actor=actor, reason=reason or "shadow of the active model", action="shadow")


async def history(conn: AsyncConnection, kind: str) -> list[dict[str, Any]]:
    query = select(model_activations).where(model_activations.c.kind == kind).order_by(model_activations.c.id)
    return [dict(row) for row in (await conn.execute(query)).mappings()]

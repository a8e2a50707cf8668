"""The pre-flight checks, before anything changes: the tag is strict semver and a published
GitHub release, its image is in ECR (both asked at once), the manifests render and are valid,
and a protected environment takes only tags verified where it is promoted from.

Layer: commands (above the strategies; the pipeline and the waves call it).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from functools import partial

from releasegate.aws.registry import Image
from releasegate.core import placement
from releasegate.core.version import ReleaseTag, parse_tag
from releasegate.deploy import render as renderer
from releasegate.github.releases import Release, validate_release
from releasegate.run import Plan, Run, describe
from releasegate.strategies import strategy_of


def validate(run: Run, tag_text: str) -> tuple[ReleaseTag, Release]:
    """The tag is strict semver and a published GitHub release (a prerelease only where allowed)."""
    project, env = run.project, run.env
    with run.stages.run("validate") as done:
        tag, release = validate_release(
            run.clients.releases, tag_text, project.tag_prefix, env.allow_prerelease, env.name
        )
        kind = "prerelease" if release.prerelease else "release"
        done.append(f"{tag} is a published {kind} of {project.github_repository}")
    return tag, release


def preflight(
    run: Run,
    tag_text: str,
    early_cluster_checks: bool = False,
    validated: tuple[ReleaseTag, Release] | None = None,
    image_wait: float = 0.0,
    schemas: bool = True,
) -> Plan:
    """Every check that needs no change: the tag, the release, the image, the manifests.
    ``early_cluster_checks``: once the release and its image are known good (a refused release
    asks the cluster nothing), the access reviews start in the background, beside the render.
    ``validated``: the tag and release already checked (one check for several clusters);
    ``image_wait``: seconds to wait for an image ECR is still replicating to this region;
    ``schemas`` False: the same templates and values were checked against the schemas for
    another cluster of the environment (only the image's registry host differs)."""
    project, env, clients = run.project, run.env, run.clients
    looking = None if validated or image_wait else _look_up_image_meanwhile(run, tag_text)
    tag, release = validated or validate(run, tag_text)
    with run.stages.run("image") as done:
        image: Image = (
            looking.result()
            if looking
            else clients.registry.find_image(
                env.ecr_repository, tag.text, image_wait, partial(run.progress.detail, "image")
            )
        )
        done.append(f"{image.repository_uri}:{tag} is {image.digest}")
    if early_cluster_checks:
        run.start_cluster_checks()
    with run.stages.run("render") as done:
        slots = strategy_of(run).target(run)  # blue/green, canary: reads what serves (no write)
        manifests = renderer.render(project, env, tag, image.pinned, slots, validate=schemas)
        done.append(
            f"{len(manifests)} objects from {renderer.describe(project, env)} for {env.namespace}"
            + _placement(slots)
            + (f", valid against Kubernetes {renderer.KUBERNETES_VERSION} schemas" if schemas else "")
        )
    describe(run.result, tag.text, image.pinned)
    run.result.slot = slots.target if isinstance(slots, placement.Slots) else None
    return Plan(tag=tag, release=release, image=image.pinned, manifests=manifests, slots=slots)


def _look_up_image_meanwhile(run: Run, tag_text: str) -> Future[Image] | None:
    """ECR's answer for the tag, asked for while GitHub is asked about the release: neither
    waits for the other. Both SDKs are imported here, in this thread, before either request
    starts. None, and the checks go one after the other as their stages report them, when the
    tag is malformed (refused before any request) or a client cannot even be created."""
    try:
        tag = parse_tag(tag_text, run.project.tag_prefix)
        run.clients.registry.prepare()
        run.clients.releases.prepare()
    except Exception:  # said by the stage that meets it again, in its own words
        return None
    looking: Future[Image] = Future()

    def look() -> None:
        try:
            looking.set_result(run.clients.registry.find_image(run.env.ecr_repository, tag.text))
        except BaseException as error:  # the image stage raises it, in the main thread
            looking.set_exception(error)

    # A daemon thread: a release GitHub refuses ends the run now, not when ECR has answered.
    threading.Thread(target=look, name="image", daemon=True).start()
    return looking


def _placement(slots: placement.Placement) -> str:
    if isinstance(slots, placement.Slots):
        return f" (slot {slots.target})"
    if isinstance(slots, placement.Track):
        return f" ({slots.name} track)"
    return ""


def promotion(run: Run, plan: Plan, skip: bool) -> None:
    """Protected environments take only tags verified where they are promoted from."""
    from releasegate.commands.promotion import require_promotion

    if run.env.promote_from is None:
        return
    with run.stages.run("promote") as done:
        if skip:
            run.progress.warning(f"--skip-promotion-check: not checking that {plan.tag} was verified first")
            done.append("skipped (--skip-promotion-check)")
            return
        where = require_promotion(
            run.project, run.env, plan.tag.text, run.clients.releases, run.progress.warning
        )
        done.append(f"{plan.tag} was verified in {where}")

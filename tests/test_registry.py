"""registry.py against moto's ECR server over HTTP (boto3 does the talking)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from releasegate.aws.registry import Registry
from releasegate.core.errors import Refused
from tests.emulators.ecr import CREDENTIALS, EcrEmulator


@pytest.fixture
def registry(ecr: EcrEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Registry, EcrEmulator]]:
    ecr.reset()
    ecr.create_repository("model-api")
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    yield Registry("eu-west-1"), ecr


def test_find_image_returns_uri_and_digest(registry: tuple[Registry, EcrEmulator]) -> None:
    client, ecr = registry
    digest = ecr.push("model-api", "v1.4.2")
    image = client.find_image("model-api", "v1.4.2")
    assert image.pinned == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@{digest}"


def test_missing_image_and_missing_repository_are_refused(registry: tuple[Registry, EcrEmulator]) -> None:
    client, _ = registry
    with pytest.raises(Refused, match=r"image model-api:v9.9.9 not found in ECR"):
        client.find_image("model-api", "v9.9.9")
    with pytest.raises(Refused, match="not found in ECR"):
        client.find_image("no-such-repo", "v1.0.0")


def test_no_credentials_is_refused(
    registry: tuple[Registry, EcrEmulator], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(Refused, match="no AWS credentials"):
        Registry("eu-west-1").find_image("model-api", "v1.0.0")


def test_unreachable_endpoint_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(Refused, match="ECR unreachable"):
        Registry("eu-west-1").find_image("model-api", "v1.0.0")


def test_denied_credentials_are_refused_with_a_hint(
    denying_ecr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", denying_ecr)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXPIREDORWRONG00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(Refused) as caught:
        Registry("eu-west-1").find_image("model-api", "v1.0.0")
    assert (
        "AWS denied the ECR request" in caught.value.cause
        and "refresh the AWS credentials" in caught.value.hint
    )

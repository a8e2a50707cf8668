"""The real tier's TLS: one CA, the API servers' and the kubelets' serving certificates, and the
service-account signing key, written into the control plane's folder (0600)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID = datetime.timedelta(days=2)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID)
    )
    if names is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def write_certificates(folder: Path, node_names: list[str], node_ip: str) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("releasegate-real-tier-ca")
    ca = _certificate("releasegate-real-tier-ca", ca_key, ca_name, ca_key)
    apiserver_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        *(x509.DNSName(n) for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc")),
    ]  # fmt: skip
    kubelet_names: list[x509.GeneralName] = [
        *(x509.DNSName(n) for n in node_names),
        x509.IPAddress(ipaddress.ip_address(node_ip)),
    ]
    files = {"ca.crt": ca.public_bytes(serialization.Encoding.PEM)}
    for name, names in (("apiserver", apiserver_names), ("kubelet", kubelet_names)):
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _certificate(name, key, ca_name, ca_key, names)
        files[f"{name}.crt"] = certificate.public_bytes(serialization.Encoding.PEM)
        files[f"{name}.key"] = _pem(key)
    signing = ec.generate_private_key(ec.SECP256R1())
    files["sa.key"] = _pem(signing)
    files["sa.pub"] = signing.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for name, data in files.items():
        (folder / name).write_bytes(data)
        (folder / name).chmod(0o600)

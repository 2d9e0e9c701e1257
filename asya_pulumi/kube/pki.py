"""The local control plane's certificates: one cluster CA, a front-proxy CA, and a key pair per component.

Written once into the state directory and reused by every ``up`` (a cluster whose CA changed would orphan every
kubeconfig that was printed). Everything is ECDSA P-256, valid for a year, with the SANs a real cluster would give:

* ``apiserver``: 127.0.0.1, localhost and ``kubernetes.default.svc`` (what in-cluster clients and the aggregator
  check);
* ``etcd``: the peer/client certificate of etcd on 127.0.0.1; the apiserver presents ``etcd-client``;
* a client certificate per identity, its CN the user and its O the groups, exactly as the apiserver's x509
  authenticator reads them (``admin`` is ``system:masters``; the controller-manager, scheduler and KWOK have their
  ``system:kube-*`` users, which the apiserver's bootstrap RBAC already binds);
* ``keda``: KEDA's one certificate for its operator's gRPC server, the metrics adapter and the webhooks, with the
  Service DNS names the aggregator and the adapter dial (each of :data:`KEDA_SERVICES` ``.keda.svc``) plus
  127.0.0.1; KEDA reads ``ca.crt``/``tls.crt``/``tls.key`` from one directory;
* ``service-account``: the key pair that signs and verifies service-account tokens.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["IDENTITIES", "KEDA_SERVICES", "Identity", "Pki", "ensure_pki"]

_VALID = dt.timedelta(days=365)
_LOOPBACK = ("127.0.0.1", "localhost")
#: The Services (namespace ``keda``) of upstream's manifests whose DNS names clients check KEDA's certificate for.
KEDA_SERVICES = ("keda-operator", "keda-metrics-apiserver", "keda-admission-webhooks")


@dataclass(frozen=True)
class Identity:
    """A client identity: the apiserver reads ``user`` from the CN and ``groups`` from the O attributes."""

    name: str
    user: str
    groups: tuple[str, ...] = ()


#: Every client of the apiserver, each with its own certificate (none shares the admin's).
IDENTITIES: tuple[Identity, ...] = (
    Identity("admin", "asya-admin", ("system:masters",)),
    Identity("controller-manager", "system:kube-controller-manager"),
    Identity("scheduler", "system:kube-scheduler"),
    Identity("kwok", "asya-kwok", ("system:masters",)),  # plays every kubelet; KWOK's own setup binds it the same
    # KEDA runs as its ServiceAccount's user, so upstream's own RBAC (config/rbac, config/metrics-server) is what
    # authorises it here, as in a cluster: a request its ClusterRole lacks is refused here too.
    Identity("keda", "system:serviceaccount:keda:keda-operator", ("system:serviceaccounts",
                                                                   "system:serviceaccounts:keda")),
    Identity("front-proxy-client", "front-proxy-client"),
    Identity("etcd-client", "kube-apiserver-etcd-client"),
)


@dataclass(frozen=True)
class Pki:
    """Paths of the files :func:`ensure_pki` wrote; ``cert(name)``/``key(name)`` for a component's pair."""

    directory: Path

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    @property
    def ca(self) -> Path:
        return self.cert("ca")

    @property
    def keda_dir(self) -> Path:
        return self.directory / "keda"


def ensure_pki(directory: Path) -> Pki:
    """The certificates under ``directory``, created on first use (mode 0700, keys 0600)."""
    pki = Pki(directory)
    if pki.cert("service-account").is_file() and (pki.keda_dir / "tls.key").is_file():
        return pki
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key, ca_cert = _authority(pki, "ca", "asya-local-kubernetes-ca")
    proxy_key, proxy_cert = _authority(pki, "front-proxy-ca", "asya-local-front-proxy-ca")
    _leaf(pki, "apiserver", ca_key, ca_cert, common_name="kube-apiserver", server=True,
          names=(*_LOOPBACK, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"))
    _leaf(pki, "etcd", ca_key, ca_cert, common_name="etcd", server=True, client=True, names=_LOOPBACK)
    for identity in IDENTITIES:
        signer = (proxy_key, proxy_cert) if identity.name == "front-proxy-client" else (ca_key, ca_cert)
        _leaf(pki, identity.name, *signer, common_name=identity.user, groups=identity.groups, client=True)
    keda_names = (*_LOOPBACK, *(f"{service}.keda.svc" for service in
                                KEDA_SERVICES))
    _leaf(pki, "keda-serving", ca_key, ca_cert, common_name="keda", server=True, client=True, names=keda_names)
    pki.keda_dir.mkdir(exist_ok=True, mode=0o700)
    for source, target in (("ca.crt", "ca.crt"), ("keda-serving.crt", "tls.crt"), ("keda-serving.key", "tls.key")):
        _write(pki.keda_dir / target, (directory / source).read_bytes(), private=target.endswith(".key"))
    sa_key = ec.generate_private_key(ec.SECP256R1())
    _write(pki.cert("service-account"), sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    _write(pki.key("service-account"), _key_bytes(sa_key), private=True)
    return pki


def _authority(pki: Pki, name: str, common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(pki.cert(name), cert.public_bytes(serialization.Encoding.PEM))
    _write(pki.key(name), _key_bytes(key), private=True)
    return key, cert


def _leaf(pki: Pki, name: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, *,
          common_name: str, groups: tuple[str, ...] = (), names: tuple[str, ...] = (),
          server: bool = False, client: bool = False) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]),
                                        critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(pki.cert(name), cert.public_bytes(serialization.Encoding.PEM))
    _write(pki.key(name), _key_bytes(key), private=True)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    path.chmod(0o600 if private else 0o644)

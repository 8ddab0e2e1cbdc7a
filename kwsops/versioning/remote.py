"""DVC remotes: the default local folder, or a WebDAV server (issue 6) checked before a push.

The WebDAV URL is tracked in .dvc/config; user and password only in .dvc/config.local (git-
ignored by DVC, mode 600), written with DVC's config API: never on a command line. webdav://
is http, webdavs:// https; a DVC_HOST with no scheme means webdavs:// (no password in clear).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

from kwsops.secrets import scrub
from kwsops.versioning.dvc_config import read_config
from kwsops.versioning.errors import RemoteError

WEBDAV_SCHEMES = {"webdav": "http", "webdavs": "https"}
HTTP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    kind: str  # "local", "webdav", or the URL scheme of another DVC remote type
    default: bool
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_verify: bool | str = field(default=True, repr=False)


@dataclass(frozen=True)
class RemoteCheck:
    ok: bool
    checks: list[tuple[str, bool, str]]  # (check, passed, one-line detail)

    @property
    def reason(self) -> str:
        return next((f"{name}: {why}" for name, ok, why in self.checks if not ok), "ok")


def _kind(url: str) -> str:
    scheme = url.split("://")[0].lower() if "://" in url else "local"
    return "webdav" if scheme in WEBDAV_SCHEMES else "local" if scheme == "file" else scheme


def remotes(ws_root: Path) -> list[Remote]:
    conf = read_config(ws_root)
    found = []
    for name, opts in conf["remote"].items():
        url = str(opts.get("url", ""))
        found.append(
            Remote(name, scrub(url), _kind(url), name == conf["core"].get("remote"),
                   opts.get("user"), opts.get("password"), opts.get("ssl_verify", True))
        )  # fmt: skip
    return found


def get_remote(ws_root: Path, name: str | None = None) -> Remote:
    """The named remote, or the default one; RemoteError when there is none."""
    found = remotes(ws_root)
    for remote in found:
        if remote.name == name or (name is None and remote.default):
            return remote
    if name is None:
        raise RemoteError(f"no default DVC remote in {ws_root}; run `kwsops init` or add one")
    known = ", ".join(r.name for r in found) or "none"
    raise RemoteError(f"no DVC remote named '{name}' in {ws_root} (known: {known})")


def webdav_url(raw: str) -> tuple[str, str | None, str | None]:
    """Normalise a WebDAV address to (webdav[s]://host[:port]/path, user, password)."""
    raw = raw.strip() if "://" in raw else f"webdavs://{raw.strip()}"
    parts = urlsplit(raw)
    scheme = {"http": "webdav", "https": "webdavs"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in WEBDAV_SCHEMES or not parts.hostname:
        raise RemoteError(f"'{scrub(raw)}' is not a WebDAV URL; use webdavs://host/path")
    netloc = parts.netloc.rsplit("@", 1)[-1]  # without user:password@
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}", user, password


def webdav_remote(url: str, user: str | None, password: str | None, name: str = "webdav") -> Remote:
    """The WebDAV remote ``url`` names (credentials in the URL count), not yet configured."""
    clean, url_user, url_password = webdav_url(url)
    return Remote(name, clean, "webdav", True, user or url_user, password or url_password)


def add_webdav(
    ws_root: Path, url: str, user: str | None, password: str | None, name: str = "webdav"
) -> None:
    """Add or update a WebDAV remote and make it the default; credentials go to config.local."""
    remote = webdav_remote(url, user, password, name)
    clean, user, password = remote.url, remote.user, remote.password
    conf = read_config(Path(ws_root))
    with conf.edit("repo") as repo:
        opts = repo["remote"].setdefault(name, {})
        opts["url"] = clean
        opts.pop("user", None), opts.pop("password", None)  # never in the tracked file
        repo["core"]["remote"] = name
    config_local = Path(ws_root) / ".dvc" / "config.local"
    config_local.touch(mode=0o600)  # private before the password goes in
    config_local.chmod(0o600)
    with conf.edit("local") as local:
        local["core"].pop("remote", None)  # a local default (the folder remote) would win
        merged = {**local["remote"].get(name, {}), "user": user, "password": password}
        local["remote"][name] = {key: value for key, value in merged.items() if value}


def configure_from_env(ws_root: Path) -> bool:
    """Configure the `webdav` remote from DVC_HOST, DVC_USER, DVC_PASSWORD; True if changed."""
    host = os.environ.get("DVC_HOST", "").strip()
    if not host:
        return False
    url, url_user, url_password = webdav_url(host)
    user = os.environ.get("DVC_USER") or url_user
    password = os.environ.get("DVC_PASSWORD") or url_password
    now = {remote.name: remote for remote in remotes(Path(ws_root))}.get("webdav")
    if now and (now.url, now.user, now.password, now.default) == (url, user, password, True):
        return False
    add_webdav(Path(ws_root), url, user, password)
    return True


def _session(remote: Remote) -> tuple[Any, str]:
    """A requests session with the remote's login, and its folder's http(s) URL ending in /."""
    import requests

    session = requests.Session()
    session.auth = (remote.user, remote.password or "") if remote.user else None
    session.verify = remote.ssl_verify
    parts = urlsplit(remote.url)
    scheme = WEBDAV_SCHEMES[parts.scheme.lower()]
    return session, f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/"


def _request(session: Any, method: str, url: str, **kwargs: Any) -> Any:
    # never follow redirects: requests turns 302/303 into GET (-> 405) and drops the login
    return session.request(method, url, allow_redirects=False, timeout=HTTP_TIMEOUT, **kwargs)


def _path(url: str) -> str:
    return unquote(urlsplit(url).path) or "/"


def _mkcol(session: Any, url: str, depth: int = 0) -> None:
    """Create the collection ``url`` and any missing parents (409 means: no parent)."""
    answer = _request(session, "MKCOL", url)
    if answer.status_code == 409 and depth < 32 and _path(url) != "/":
        _mkcol(session, url[: url.rstrip("/").rfind("/") + 1], depth + 1)
        answer = _request(session, "MKCOL", url)
    if answer.status_code not in (200, 201, 405):  # 405: it exists already
        raise RemoteError(f"cannot create {_path(url)}: MKCOL answered HTTP {answer.status_code}")


def select_local(ws_root: Path, local_dir: Path) -> Remote:
    """Make the workspace's local-folder remote the default again (adding it if missing),
    with its path relative to .dvc/ so a copied workspace uses its own."""
    from dvc.config_schema import RelPath  # DVC writes it relative to .dvc/, reads it back

    ws_root = Path(ws_root)
    local_dir.mkdir(parents=True, exist_ok=True)
    conf = read_config(ws_root)
    with conf.edit("repo") as repo:
        repo["core"].pop("remote", None)  # a tracked default would follow every clone
    with conf.edit("local") as local:
        local["remote"].setdefault("local", {})["url"] = RelPath(str(Path(local_dir).resolve()))
        local["core"]["remote"] = "local"
    return get_remote(ws_root)


def check_remote(ws_root: Path, name: str | None = None) -> RemoteCheck:
    """Server answers? Credentials accepted? Folder there (else created) and writable?"""
    return check(get_remote(Path(ws_root), name))


def check(remote: Remote) -> RemoteCheck:
    """:func:`check_remote` for a remote that need not be configured yet."""
    import requests

    if remote.kind == "local":
        try:
            Path(remote.url).mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=remote.url).close()
        except OSError as exc:
            return RemoteCheck(False, [("folder", False, f"{remote.url}: {exc.strerror}")])
        return RemoteCheck(True, [("folder", True, f"{remote.url} exists and is writable")])
    if remote.kind != "webdav":
        return RemoteCheck(True, [("kind", True, f"{remote.kind} remote: not checked")])
    checks: list[tuple[str, bool, str]] = []

    def failed(check: str, detail: str) -> RemoteCheck:
        checks.append((check, False, scrub(detail, (remote.password,))))
        return RemoteCheck(False, checks)

    session, base = _session(remote)
    host, folder, step = urlsplit(base).netloc, _path(base), "server"
    who = f"user '{remote.user}'" if remote.user else "no user"
    try:
        code = _request(session, "PROPFIND", base, headers={"Depth": "0"}).status_code
        checks.append((step, True, f"{host} answered (HTTP {code})"))
        step = "credentials"
        if code == 401:
            hint = "rejected" if remote.user else "needed: set a user and password"
            return failed(step, f"login {hint} for {who} at {host} (401 Unauthorized)")
        if code == 403:
            return failed(step, f"{who} may not open {folder} on {host} (403 Forbidden)")
        checks.append((step, True, f"accepted for {who}"))
        step = "folder"
        if 300 <= code < 400:
            return failed(step, f"{folder} is redirected (HTTP {code}); use the final URL")
        if code not in (207, 404, 409):
            return failed(step, f"PROPFIND {folder} answered HTTP {code}: not a WebDAV folder")
        if code != 207:
            _mkcol(session, base)
        checks.append((step, True, f"{folder} exists" if code == 207 else f"created {folder}"))
        step = "write"
        probe = f"{base}.kwsops-probe-{uuid.uuid4().hex}"
        put = _request(session, "PUT", probe, data=b"kwsops write probe\n").status_code
        if put not in (200, 201, 204):
            return failed(step, f"cannot write in {folder}: PUT answered HTTP {put}")
        _request(session, "DELETE", probe)
        checks.append((step, True, "probe file written and deleted"))
        return RemoteCheck(True, checks)
    except (RemoteError, requests.RequestException) as exc:
        return failed(step, _network_reason(exc, host))


def _network_reason(exc: Exception, host: str) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return f"no answer from {host} within {HTTP_TIMEOUT:g} s"
    if isinstance(exc, requests.ConnectionError):
        why = "refused" if "refused" in str(exc).lower() else "failed"
        return f"cannot connect to {host}: connection {why}"
    return str(exc) if isinstance(exc, RemoteError) else f"{host}: {type(exc).__name__}"


def _remote_sizes(session: Any, url: str) -> dict[str, int]:
    answer = _request(session, "PROPFIND", url, headers={"Depth": "1"})
    if answer.status_code == 404:
        return {}
    if answer.status_code != 207:
        raise RemoteError(f"cannot list {_path(url)}: PROPFIND answered HTTP {answer.status_code}")
    sizes: dict[str, int] = {}
    for response in ElementTree.fromstring(answer.content).iter("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        length = (response.findtext(".//{DAV:}getcontentlength") or "").strip()
        if length.isdigit():
            sizes[unquote(href.rstrip("/").rsplit("/", 1)[-1])] = int(length)
    return sizes


def remove_partial_uploads(ws_root: Path, objects: dict[str, int], name: str | None = None) -> int:
    """Delete remote objects (md5 -> size) of another size: cut-off uploads, which some
    servers (wsgidav) keep under the final name, so DVC counts them as pushed. Returns a count."""
    remote = get_remote(Path(ws_root), name)
    if remote.kind != "webdav" or not objects:
        return 0
    session, root = _session(remote)
    base, removed = f"{root}files/md5/", 0
    try:
        for prefix in sorted({oid[:2] for oid in objects}):
            sizes = _remote_sizes(session, f"{base}{prefix}/")
            for oid, size in objects.items():
                if oid[:2] == prefix and sizes.get(oid[2:], size) != size:
                    _request(session, "DELETE", f"{base}{prefix}/{oid[2:]}")
                    removed += 1
    except (OSError, ValueError, ElementTree.ParseError) as exc:  # requests' errors are OSErrors
        why = _network_reason(exc, urlsplit(base).netloc)
        message = scrub(f"cannot verify earlier uploads: {why}", (remote.password,))
        raise RemoteError(message) from None
    return removed


def missing_objects(ws_root: Path, oids: list[str], name: str | None = None) -> set[str]:
    """Which of the objects (md5 names) the remote lacks: a local folder is looked at, a
    WebDAV folder listed; any other kind of remote is not asked (all count as missing)."""
    remote = get_remote(Path(ws_root), name)
    if remote.kind == "local":
        base = Path(remote.url) / "files" / "md5"
        return {oid for oid in oids if not (base / oid[:2] / oid[2:]).is_file()}
    if remote.kind != "webdav":
        return set(oids)
    session, root = _session(remote)
    missing: set[str] = set()
    try:
        for prefix in sorted({oid[:2] for oid in oids}):
            there = _remote_sizes(session, f"{root}files/md5/{prefix}/")
            missing |= {oid for oid in oids if oid[:2] == prefix and oid[2:] not in there}
    except (OSError, ValueError, ElementTree.ParseError):  # unknown: counted as missing
        return set(oids)
    return missing

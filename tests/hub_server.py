# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""A small Hugging Face Hub stand-in for tests: enough of the Hub's HTTP API for the real clients
(`huggingface_hub` uploads and downloads, `transformers` `from_pretrained`, `datasets` `load_dataset`) to work
against it, with `HF_HUB_DISABLE_XET=1` (files go through the classic LFS protocol).

Two loopback servers (127.0.0.1, random free ports), standard library only:

* the **API server** (`HubServer.endpoint`, what `HF_ENDPOINT` points at): repo creation, repo info, preupload,
  commits (NDJSON: regular files inline in base64, LFS files by pointer), the LFS batch and verify endpoints, tree
  listing, paths-info, refs, branch creation, commit listing, `validate-yaml`, and `resolve` (GET / HEAD, ranges);
* the **storage server** (`HubServer.storage_url`), a stand-in for the Hub's CDN / S3: LFS uploads are PUT there
  (the batch endpoint hands out its URLs, like pre-signed S3 URLs) and LFS downloads are redirected there. It is a
  different origin from the API server, so the client behaves as against the real Hub: it does not follow the
  redirect on HEAD (the file's metadata comes from the redirect response: `X-Linked-Etag`, `X-Linked-Size`) and it
  drops its `Authorization` header when downloading from there (`HubServer.storage_saw_authorization` records it).

Behaviour kept from the Hub: a new repo starts with one commit holding `.gitattributes`; writes need
`Authorization: Bearer <token>` when the server has a token; private repos answer 401 to requests without the token,
which the client reads as "repository not found"; errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
`EntryNotFound`) and, for `resolve`, `X-Repo-Commit`. Every commit is appended to `HubServer.commits`, every request
to `HubServer.requests` (method, path, status; never headers, so no token), unknown routes to
`HubServer.unhandled`.

Not covered: pull requests, tags, deletions of repos, Xet, multipart LFS uploads, pagination, `expand` filtering.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Files stored as LFS blobs, like the patterns of the Hub's default .gitattributes (abridged), or large / binary.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".model", ".arrow",
                ".parquet", ".npy", ".npz", ".wav", ".flac", ".mp3", ".ogg", ".zip", ".gz", ".tar", ".pkl")  # fmt: skip
LFS_SIZE_THRESHOLD = 1_000_000
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)
_LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


@dataclass
class Entry:
    """One file of one commit: a regular git blob (`sha1` of its content) or an LFS object (`sha256`)."""

    size: int
    blob_id: str  # git oid: of the content for regular files, of the pointer file for LFS files
    sha256: str | None = None  # LFS files only
    pointer_size: int | None = None

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None

    def tree_json(self, path: str) -> dict:
        item = {"type": "file", "oid": self.blob_id, "size": self.size, "path": path}
        if self.is_lfs:
            item["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return item


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, Entry]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision.startswith("refs/heads/") and revision[len("refs/heads/") :] in self.branches:
            return self.commits[self.branches[revision[len("refs/heads/") :]]]
        return self.commits.get(revision)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **body):
        super().__init__(message)
        self.status, self.message, self.code, self.headers, self.body = status, message, code, headers or {}, body


class HubServer:
    """The two servers and their shared state; `start()` / `stop()`, or use as a context manager."""

    def __init__(self, data_dir: str | Path, token: str | None = None, user: str = "tester"):
        self.data_dir = Path(data_dir)
        self.blob_dir = self.data_dir / "blobs"
        self.lfs_dir = self.data_dir / "lfs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.lfs_dir.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.commits: list[dict] = []  # one record per commit made through the commit endpoint
        self.requests: list[tuple[str, str, int]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.storage_saw_authorization = False
        self.lock = threading.RLock()
        self._counter = itertools.count()
        self._servers: list[ThreadingHTTPServer] = []
        self.endpoint = self.storage_url = ""

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> HubServer:
        api = _make_server(_ApiHandler, self)
        storage = _make_server(_StorageHandler, self)
        self._servers = [api, storage]
        self.endpoint = f"http://127.0.0.1:{api.server_address[1]}"
        self.storage_url = f"http://127.0.0.1:{storage.server_address[1]}"
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- state helpers ---------------------------------------------------------------------------------------------
    def commits_for(self, repo_id: str, repo_type: str = "model") -> list[dict]:
        """The commits made to one repo through the commit endpoint (repo creation's initial commit excluded)."""
        return [c for c in self.commits if c["repo_id"] == repo_id and c["repo_type"] == repo_type]

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def authorized(self, headers) -> bool:
        return self.token is None or headers.get("Authorization") == f"Bearer {self.token}"

    def new_oid(self, *parts) -> str:
        seed = json.dumps([next(self._counter), time.time(), *parts], default=str)
        return hashlib.sha1(seed.encode()).hexdigest()

    def store_blob(self, content: bytes) -> Entry:
        oid = git_blob_sha1(content)
        path = self.blob_dir / oid
        if not path.exists():
            path.write_bytes(content)
        return Entry(size=len(content), blob_id=oid)

    def lfs_entry(self, sha256: str, size: int) -> Entry:
        pointer = _LFS_POINTER.format(oid=sha256, size=size).encode()
        return Entry(size=size, blob_id=git_blob_sha1(pointer), sha256=sha256, pointer_size=len(pointer))

    def lfs_object(self, sha256: str) -> Path | None:
        path = self.lfs_dir / sha256
        return path if re.fullmatch(r"[0-9a-f]{64}", sha256) and path.exists() else None

    def read(self, entry: Entry) -> Path:
        return self.lfs_dir / entry.sha256 if entry.is_lfs else self.blob_dir / entry.blob_id

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        now = _now()
        repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=now)
        files = {".gitattributes": self.store_blob(GITATTRIBUTES.encode())}
        oid = self.new_oid(repo_type, repo_id, "initial")
        repo.commits[oid] = Commit(oid, None, "initial commit", "", now, files)
        repo.branches["main"] = oid
        self.repos[(repo_type, repo_id)] = repo
        return repo


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _make_server(handler, hub: HubServer) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.hub = hub
    return server


class _BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections close after this

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def log_message(self, format, *args):  # no stderr noise; `requests` keeps method, path and status
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_length: int | None = None):
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body) if content_length is None else content_length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        with self.hub.lock:
            self.hub.requests.append((self.command, urlsplit(self.path).path, status))

    def _json(self, status: int, payload, headers: dict | None = None):
        headers = {"Content-Type": "application/json", **(headers or {})}
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, error: HubError):
        headers = {"X-Error-Message": error.message, **error.headers}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._json(error.status, {"error": error.message, **error.body}, headers)

    def _send_file(self, path: Path, headers: dict):
        """Serves a file, honouring a single `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` header."""
        data = path.read_bytes()
        size = len(data)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", **headers}
        if not match or match.groups() == ("", ""):
            return self._send(200, data, headers)
        first, last = match.groups()
        if first == "":  # suffix range: the last n bytes
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            return self._send(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return self._send(206, data[start : end + 1], headers)

    def _dispatch(self):
        try:
            handled = self.route()
            if handled is False:
                with self.hub.lock:
                    self.hub.unhandled.append((self.command, self.path))
                self._error(HubError(404, f"No route for {self.command} {urlsplit(self.path).path}"))
        except HubError as error:
            self._error(error)
        except Exception as error:  # surface server bugs to the client as 500s instead of dropped connections
            self._json(500, {"error": f"{type(error).__name__}: {error}"})

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def route(self):  # pragma: no cover - overridden
        return False


class _StorageHandler(_BaseHandler):
    """The CDN / S3 stand-in: `PUT /upload/<sha256>` stores an LFS object (its hash checked), `GET /lfs/<sha256>`."""

    def route(self):
        if self.headers.get("Authorization"):
            self.hub.storage_saw_authorization = True
        path = urlsplit(self.path).path
        match = re.fullmatch(r"/(upload|lfs)/([0-9a-f]{64})", path)
        if not match:
            return False
        kind, oid = match.groups()
        if kind == "upload" and self.command == "PUT":
            content = self._body()
            if hashlib.sha256(content).hexdigest() != oid:
                raise HubError(400, "Uploaded content does not match its sha256.")
            (self.hub.lfs_dir / oid).write_bytes(content)
            return self._send(200, b"", {"ETag": f'"{hashlib.md5(content).hexdigest()}"'})
        if kind == "lfs" and self.command in ("GET", "HEAD"):
            path = self.hub.lfs_object(oid)
            if path is None:
                raise HubError(404, "No such object.")
            return self._send_file(path, {"ETag": f'"{oid}"'})
        return False


# Hub endpoints clients call opportunistically (and cope without): answered 404, not counted as unhandled.
_NOT_SERVED = {"/api/agent-harnesses"}
_REPO = r"/(?:(?P<type>datasets|spaces|models)/)?(?P<repo>[^/]+/[^/]+)"


class _ApiHandler(_BaseHandler):
    def route(self):
        raw_path = urlsplit(self.path).path
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        method = self.command

        if raw_path in _NOT_SERVED:
            raise HubError(404, "Not served by the test hub")
        if raw_path == "/api/whoami-v2" and method == "GET":
            self._require_token()
            return self._json(200, {"type": "user", "name": self.hub.user, "orgs": [], "auth": {}})
        if raw_path == "/api/repos/create" and method == "POST":
            return self._create_repo(json.loads(self._body() or b"{}"))
        if raw_path == "/api/validate-yaml" and method == "POST":
            return self._validate_yaml(json.loads(self._body() or b"{}"))

        match = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(.*))?", raw_path)
        if match:
            kind, repo_id, rest = match.groups()
            return self._api(REPO_TYPES[kind], unquote(repo_id), rest or "", query)

        match = re.fullmatch(_REPO + r"\.git/info/lfs/objects/(batch|verify)", raw_path)
        if match and method == "POST":
            repo = self._repo(REPO_TYPES[match["type"] or "models"], unquote(match["repo"]), write=True)
            return self._lfs(repo, match.group(3), json.loads(self._body() or b"{}"))

        match = re.fullmatch(_REPO + r"/resolve/([^/]+)/(.+)", raw_path)
        if match and method in ("GET", "HEAD"):
            repo = self._repo(REPO_TYPES[match["type"] or "models"], unquote(match["repo"]))
            return self._resolve(repo, unquote(match.group(3)), unquote(match.group(4)))
        return False

    # --- helpers ---------------------------------------------------------------------------------------------------
    def _require_token(self):
        if not self.hub.authorized(self.headers):
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        if write:
            self._require_token()
        with self.hub.lock:
            repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not (self.hub.token and self.hub.authorized(self.headers))):
            # Like the Hub: a private repo without credentials looks like a missing one.
            status = 401 if repo is not None and not self.headers.get("Authorization") else 404
            raise HubError(status, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        with self.hub.lock:
            commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _url(self, repo: Repo) -> str:
        return f"{self.hub.endpoint}/{URL_PREFIXES[repo.repo_type]}{repo.repo_id}"

    # --- endpoints -------------------------------------------------------------------------------------------------
    def _create_repo(self, payload: dict):
        self._require_token()
        name, organization = payload.get("name"), payload.get("organization") or self.hub.user
        repo_type = payload.get("type") or "model"
        if not name or repo_type not in URL_PREFIXES:
            raise HubError(400, "Invalid repo name or type")
        repo_id = f"{organization}/{name}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with self.hub.lock:
            if (repo_type, repo_id) in self.hub.repos:  # like the Hub, the conflict still carries the repo's url
                existing = self.hub.repos[(repo_type, repo_id)]
                raise HubError(409, "You already created this repo", url=self._url(existing))
            repo = self.hub.create_repo(repo_type, repo_id, private)
        return self._json(200, {"url": self._url(repo), "name": repo_id, "id": self.hub.new_oid(repo_id)})

    def _validate_yaml(self, payload: dict):
        """Parses the README's YAML header: the Hub's checks on metadata *structure* (not its vocabularies)."""
        errors = []
        content = payload.get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
        if match:
            try:
                metadata = yaml.safe_load(match.group(1))
            except yaml.YAMLError as error:
                metadata, errors = None, [{"message": f"YAML parse error: {error}"}]
            if metadata is not None and not isinstance(metadata, dict):
                errors.append({"message": "metadata must be a YAML mapping"})
            elif isinstance(metadata, dict):
                for key in ("tags", "datasets", "base_model", "language", "license"):
                    value = metadata.get(key)
                    if value is not None and not isinstance(value, (str, list)):
                        errors.append({"message": f'"{key}" must be a string or a list of strings'})
                if "model-index" in metadata and not isinstance(metadata["model-index"], list):
                    errors.append({"message": '"model-index" must be a list'})
        if errors:
            return self._json(400, {"errors": errors, "warnings": []})
        return self._json(200, {"errors": [], "warnings": []})

    def _api(self, repo_type: str, repo_id: str, rest: str, query: dict):
        method = self.command
        parts = rest.split("/") if rest else []
        if method == "GET" and (not parts or parts[0] == "revision"):
            repo = self._repo(repo_type, repo_id)
            revision = unquote(parts[1]) if len(parts) > 1 else "main"
            return self._json(200, self._info(repo, self._commit(repo, revision)))
        if not parts:
            return False
        action, args = parts[0], [unquote(p) for p in parts[1:]]
        if action == "preupload" and method == "POST":
            repo = self._repo(repo_type, repo_id, write=True)
            return self._preupload(repo, args[0], json.loads(self._body() or b"{}"))
        if action == "commit" and method == "POST":
            repo = self._repo(repo_type, repo_id, write=True)
            return self._commit_files(repo, args[0], self._body())
        if action == "branch" and method == "POST":
            repo = self._repo(repo_type, repo_id, write=True)
            return self._create_branch(repo, args[0], json.loads(self._body() or b"{}"))
        if action == "refs" and method == "GET":
            repo = self._repo(repo_type, repo_id)
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in repo.branches.items()]
            return self._json(200, {"branches": branches, "converts": [], "tags": [], "pullRequests": []})
        if action == "tree" and method == "GET":
            repo = self._repo(repo_type, repo_id)
            commit = self._commit(repo, args[0])
            recursive = query.get("recursive", "false").lower() in ("1", "true")
            return self._json(200, self._tree(commit, "/".join(args[1:]).strip("/"), recursive))
        if action == "paths-info" and method == "POST":
            repo = self._repo(repo_type, repo_id)
            return self._paths_info(self._commit(repo, args[0]))
        if action == "commits" and method == "GET":
            repo = self._repo(repo_type, repo_id)
            return self._json(200, self._history(repo, self._commit(repo, args[0])))
        return False

    def _info(self, repo: Repo, commit: Commit) -> dict:
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling = {"rfilename": path, "size": entry.size, "blobId": entry.blob_id}
            if entry.is_lfs:
                sibling["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "siblings": siblings,
        }
        card_data = self._card_data(commit)
        if card_data is not None:
            info["cardData"] = card_data
            for key in ("pipeline_tag", "library_name"):
                if key in card_data:
                    info[key] = card_data[key]
            info["tags"] = list(card_data.get("tags") or [])
        return info

    def _card_data(self, commit: Commit) -> dict | None:
        entry = commit.files.get("README.md")
        if entry is None:
            return None
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n", self.hub.read(entry).read_text("utf-8"), re.DOTALL)
        data = yaml.safe_load(match.group(1)) if match else None
        return data if isinstance(data, dict) else None

    def _preupload(self, repo: Repo, revision: str, payload: dict):
        commit = self._commit(repo, revision)
        files = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample", ""))
            lfs = path.endswith(LFS_SUFFIXES) or size >= LFS_SIZE_THRESHOLD or b"\x00" in sample
            existing = commit.files.get(path)
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.is_lfs else existing.blob_id
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return self._json(200, {"files": files, "commitOid": commit.oid})

    def _lfs(self, repo: Repo, action: str, payload: dict):
        if action == "verify":
            path = self.hub.lfs_object(payload.get("oid", ""))
            if path is None or path.stat().st_size != payload.get("size"):
                raise HubError(404, "LFS object not found or of the wrong size")
            return self._json(200, {"success": True})
        objects = []
        verify_href = f"{self._url(repo)}.git/info/lfs/objects/verify"
        for item in payload.get("objects", []):
            oid, size = item["oid"], int(item["size"])
            response = {"oid": oid, "size": size, "authenticated": True}
            if self.hub.lfs_object(oid) is None:
                response["actions"] = {
                    "upload": {"href": f"{self.hub.storage_url}/upload/{oid}", "header": {}},
                    "verify": {"href": verify_href, "header": {}},
                }
            objects.append(response)
        headers = {"Content-Type": "application/vnd.git-lfs+json"}
        return self._json(200, {"transfer": "basic", "objects": objects}, headers)

    def _commit_files(self, repo: Repo, revision: str, body: bytes):
        lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first line of a commit must be its header")
        header = lines[0]["value"]
        with self.hub.lock:
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.commits[repo.branches[revision]]
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                raise HubError(412, "A commit has happened since the parent commit")
            files = dict(head.files)
            changed = []
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    files[path] = self.hub.store_blob(base64.b64decode(value["content"]))
                elif key == "lfsFile":
                    stored = self.hub.lfs_object(value["oid"])
                    if stored is None or value.get("size", stored.stat().st_size) != stored.stat().st_size:
                        raise HubError(422, f"LFS object of {path} was not uploaded (or has another size)")
                    files[path] = self.hub.lfs_entry(value["oid"], stored.stat().st_size)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    for name in [n for n in files if n.startswith(prefix)]:
                        del files[name]
                else:
                    raise HubError(400, f"Unknown commit operation {key!r}")
                changed.append(path)
            oid = self.hub.new_oid(repo.repo_id, revision, header.get("summary"))
            summary = header.get("summary") or ""
            repo.commits[oid] = Commit(oid, head.oid, summary, header.get("description") or "", _now(), files)
            repo.branches[revision] = oid
            record = {"repo_type": repo.repo_type, "repo_id": repo.repo_id, "revision": revision, "oid": oid,
                      "summary": summary, "description": header.get("description") or "", "paths": changed}  # fmt: skip
            self.hub.commits.append(record)
        url = f"{self._url(repo)}/commit/{oid}"
        return self._json(200, {"success": True, "commitOid": oid, "commitUrl": url, "pullRequestUrl": None})

    def _create_branch(self, repo: Repo, branch: str, payload: dict):
        with self.hub.lock:
            if branch in repo.branches:
                raise HubError(409, f"Reference refs/heads/{branch} already exists")
            if branch.startswith("refs/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
                raise HubError(400, f"Invalid branch name {branch!r}")
            start = self._commit(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.oid
        return self._json(200, {})

    def _tree(self, commit: Commit, folder: str, recursive: bool) -> list[dict]:
        prefix = f"{folder}/" if folder else ""
        if folder and folder in commit.files:
            raise HubError(400, f"{folder} is a file, not a folder")
        items, folders = [], set()
        for path, entry in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            rel_parts = path[len(prefix) :].split("/")
            for depth in range(1, len(rel_parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(rel_parts[:depth]))
            if recursive or len(rel_parts) == 1:
                items.append(entry.tree_json(path))
        if folder and not items and not folders:
            raise HubError(404, f"Folder {folder} not found", "EntryNotFound")
        folder_items = [{"type": "directory", "oid": git_blob_sha1(f.encode()), "size": 0, "path": f} for f in folders]
        return sorted(folder_items + items, key=lambda item: item["path"])

    def _paths_info(self, commit: Commit):
        body = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode("utf-8")).get("paths", [])
        result = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                result.append(commit.files[path].tree_json(path))
            elif any(name.startswith(f"{path}/") for name in commit.files):
                result.append({"type": "directory", "oid": git_blob_sha1(path.encode()), "size": 0, "path": path})
        return self._json(200, result)

    def _history(self, repo: Repo, commit: Commit | None) -> list[dict]:
        history = []
        while commit is not None:
            history.append({"id": commit.oid, "title": commit.title, "message": commit.message,
                            "date": commit.date, "authors": [{"user": self.hub.user}]})  # fmt: skip
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return history

    def _resolve(self, repo: Repo, revision: str, filename: str):
        commit = self._commit(repo, revision)
        entry = commit.files.get(filename)
        headers = {"X-Repo-Commit": commit.oid}
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", headers)
        if entry.is_lfs:
            # Like the Hub: LFS content is served by the CDN, the metadata is on the redirect itself.
            headers.update({
                "ETag": f'"{entry.blob_id}"',
                "X-Linked-Etag": f'"{entry.sha256}"',
                "X-Linked-Size": str(entry.size),
                "Location": f"{self.hub.storage_url}/lfs/{entry.sha256}",
            })  # fmt: skip
            return self._send(302, b"", headers)
        headers["ETag"] = f'"{entry.blob_id}"'
        return self._send_file(self.hub.read(entry), headers)


__all__ = ["HubServer", "git_blob_sha1"]

"""Publishing through huggingface_hub's real upload code, against a local stand-in for the Hub's HTTP API.

The stand-in implements what huggingface_hub 2.x requests for create_repo + upload_folder:
POST /api/repos/create, POST /api/validate-yaml, POST /api/models/<id>/preupload/<rev> and
POST /api/models/<id>/commit/<rev> (NDJSON). Like the Hub, it asks for LFS upload for weights, binary and large
files (`model.safetensors` among them): those go through the LFS batch API (POST /<id>.git/info/lfs/objects/batch,
then a PUT of the content to the URL it answers) and the commit names them by sha256; the other files travel
base64-encoded inside the commit. huggingface_hub's Xet path (a storage protocol of its own) is switched off:
the legacy LFS path is the one the stand-in speaks. Any other request is recorded as unexpected and answered 404.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard

from testing_utils import LABELS, save_tiny_classifier
from hf_mtkd.cli.push import main as push_main
from hf_mtkd.hub import HubPushError, ModelCardError, TEMPLATE_PATH, push_to_hub
from hf_mtkd.metrics import compute_ser_metrics
from hf_mtkd.training import SERTrainingArguments

TOKEN = "hf_standInTokenDoNotLeak0123456789"
USER = "stand-in-user"


#: What the Hub stores with LFS whatever their size (its default .gitattributes); besides, binary and large files.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx")
LFS_MIN_BYTES = 10 * 2**20


def wants_lfs(file: dict) -> bool:
    """The upload mode the Hub's preupload endpoint answers for one file ({path, sample, size})."""
    sample = base64.b64decode(file.get("sample") or "")
    return file["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or file["size"] >= LFS_MIN_BYTES


class StandInHub:
    """Records repos, commits and every request; `files[repo_id]` maps path -> bytes as committed, `lfs_files[repo_id]`
    the paths that arrived through LFS."""

    def __init__(self):
        self.requests, self.unexpected = [], []
        self.repos, self.files, self.commits = {}, {}, []
        self.lfs_objects, self.lfs_files = {}, {}  # sha256 -> bytes uploaded; repo -> paths committed by oid
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                hub.record(self, b"")
                hub.unexpected.append(("GET", self.path))
                self.reply(404, {"error": "not implemented by the stand-in"})

            def do_POST(self):
                body = self.body()
                hub.record(self, body)
                status, payload = hub.handle(self.path.split("?")[0], body)
                self.reply(status, payload)

            def do_PUT(self):  # the LFS upload of one object, at the URL the batch answer gave
                body = self.body()
                hub.record(self, body)
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[0] != "lfs-upload":
                    hub.unexpected.append(("PUT", self.path))
                    return self.reply(404, {"error": "not implemented by the stand-in"})
                if hashlib.sha256(body).hexdigest() != parts[1]:
                    return self.reply(400, {"error": "content does not match its oid"})
                hub.lfs_objects[parts[1]] = body
                self.reply(200, {})

            def body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def record(self, handler, body):
        self.requests.append({"method": handler.command, "path": handler.path,
                              "authorization": handler.headers.get("Authorization"), "body": body})

    def handle(self, path, body):
        if path == "/api/repos/create":
            request = json.loads(body)
            repo_id = f"{request.get('organization') or USER}/{request['name']}"
            if repo_id in self.repos:
                return 409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}
            self.repos[repo_id] = request
            self.files[repo_id] = {}
            return 200, {"url": f"{self.url}/{repo_id}", "name": repo_id}
        if path == "/api/validate-yaml":
            ModelCard(json.loads(body)["content"])  # the metadata must parse into ModelCardData
            return 200, {"errors": [], "warnings": []}
        parts = path.strip("/").split("/")  # api models <ns> <name> preupload|commit <rev>
        if path.endswith(".git/info/lfs/objects/batch"):
            repo_id = path.strip("/").removesuffix(".git/info/lfs/objects/batch")
            if repo_id not in self.repos:
                return 404, {"error": "Repository not found"}
            request = json.loads(body)
            assert request["operation"] == "upload" and request["hash_algo"] == "sha256"
            return 200, {"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"], "authenticated": True,
                 "actions": {"upload": {"href": f"{self.url}/lfs-upload/{o['oid']}"}}}
                for o in request["objects"]]}
        if len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] in ("preupload", "commit"):
            repo_id = f"{parts[2]}/{parts[3]}"
            if repo_id not in self.repos:
                return 404, {"error": "Repository not found"}
            if parts[4] == "preupload":
                files = json.loads(body)["files"]
                return 200, {"files": [{"path": f["path"], "uploadMode": "lfs" if wants_lfs(f) else "regular",
                                        "shouldIgnore": False} for f in files]}
            lines = [json.loads(line) for line in body.decode().splitlines() if line]
            assert lines[0]["key"] == "header"
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "lfsFile":  # content uploaded before, named by its sha256
                    assert value["algo"] == "sha256" and len(self.lfs_objects[value["oid"]]) == value["size"]
                    self.files[repo_id][value["path"]] = self.lfs_objects[value["oid"]]
                    self.lfs_files.setdefault(repo_id, set()).add(value["path"])
                    continue
                assert line["key"] == "file" and value["encoding"] == "base64", line["key"]
                self.files[repo_id][value["path"]] = base64.b64decode(value["content"])
            self.commits.append({"repo_id": repo_id, "revision": parts[5], "summary": lines[0]["value"]["summary"]})
            oid = f"{len(self.commits):040x}"
            return 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "success": True}
        self.unexpected.append(("POST", path))
        return 404, {"error": "not implemented by the stand-in"}


@pytest.fixture
def hub(monkeypatch):
    # The stand-in is on this machine: lift the test suite's offline switch for huggingface_hub only
    # (it is read once, at import, into constants), and point its default endpoint at the stand-in.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    # huggingface_hub 2.4 builds its user agent with a once-a-day GET {endpoint}/api/agent-harnesses (cached in
    # HF_HOME) unless telemetry is off: keep that out of the recorded upload and out of the user's HF_HOME.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the stand-in speaks LFS, not Xet
    server = StandInHub()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    assert not server.unexpected, server.unexpected


@pytest.fixture
def no_saved_token(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))


def save_student(out: Path, hub_token=None) -> Path:
    """A tiny student folder as a run leaves it: model, feature extractor, metrics, args, and a checkpoint."""
    save_tiny_classifier(out, LABELS)
    metrics = compute_ser_metrics([0, 1, 2, 3, 1, 1], [0, 1, 2, 3, 0, 1], LABELS, languages=["en"] * 3 + ["fi"] * 3,
                                  n_bootstrap=20)
    (out / "test_metrics.json").write_text(json.dumps(metrics))
    (out / "run_summary.json").write_text(json.dumps({
        "method": "finetune", "label_names": LABELS, "languages": ["en", "fi"], "sizes": {"test": 6},
        "results": {"test": metrics}}))
    torch.save(SERTrainingArguments(output_dir=str(out), hub_token=hub_token, report_to="none"),
               out / "training_args.bin")
    (out / "checkpoint-2").mkdir()
    (out / "checkpoint-2" / "optimizer.pt").write_bytes(b"optimizer state")
    (out / ".README.md.tmp").write_text("half-written")
    return out


@pytest.fixture
def student(tmp_path):
    return save_student(tmp_path / "student", hub_token=TOKEN)


def test_push_uploads_model_feature_extractor_and_card(hub, student):
    commit = push_to_hub(student, "org/ser-student", private=True, token=TOKEN, endpoint=hub.url,
                         commit_message="first upload", license="apache-2.0")
    assert hub.repos["org/ser-student"]["visibility"] == "private"
    uploaded = hub.files["org/ser-student"]
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "test_metrics.json",
            "run_summary.json"} <= set(uploaded)
    assert not any(p.startswith("checkpoint-") or p.startswith(".") for p in uploaded)
    assert "training_args.bin" not in uploaded  # a pickle that may hold hub_token; the card lists the hyperparameters
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        assert uploaded[name] == (student / name).read_bytes()
    # The weights went the way the Hub takes them: LFS (batch request, PUT of the content, commit by sha256).
    assert hub.lfs_files["org/ser-student"] == {"model.safetensors"}
    assert [r["path"] for r in hub.requests if r["method"] == "PUT"] == [
        f"/lfs-upload/{hashlib.sha256((student / 'model.safetensors').read_bytes()).hexdigest()}"]
    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.pipeline_tag == "audio-classification" and card.data.library_name == "transformers"
    assert card.data.language == ["en", "fi"] and card.data.license == "apache-2.0"
    assert card.data.eval_results and {r.metric_type for r in card.data.eval_results} == {"recall", "accuracy"}
    assert 'pipeline("audio-classification", model="org/ser-student")' in card.text
    assert hub.commits == [{"repo_id": "org/ser-student", "revision": "main", "summary": "first upload"}]
    assert commit.oid == f"{1:040x}"
    # The token goes to the API; the LFS content goes to the storage URL the batch answer gave, without it.
    assert all(r["authorization"] == (None if r["method"] == "PUT" else f"Bearer {TOKEN}") for r in hub.requests)
    assert not any(TOKEN.encode() in content for content in uploaded.values())
    assert TOKEN not in (student / "README.md").read_text()


def test_bare_name_goes_to_the_token_owner_and_the_card_says_so(hub, student, no_saved_token, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the usual environment variable
    push_to_hub(student, "ser-student")  # default endpoint: huggingface_hub's, here the stand-in
    uploaded = hub.files[f"{USER}/ser-student"]
    assert f'model="{USER}/ser-student"' in uploaded["README.md"].decode()
    assert hub.repos[f"{USER}/ser-student"].get("visibility") is None  # the Hub's default visibility
    assert hub.requests[0]["authorization"] == f"Bearer {TOKEN}"


def test_pushing_again_updates_the_existing_repo(hub, student):
    push_to_hub(student, "org/ser-student", token=TOKEN, endpoint=hub.url)
    (student / "notes.txt").write_text("second version")
    push_to_hub(student, "org/ser-student", token=TOKEN, endpoint=hub.url)
    assert len(hub.commits) == 2 and hub.files["org/ser-student"]["notes.txt"] == b"second version"


def bad_template(tmp_path):
    path = tmp_path / "card.md"
    path.write_text(TEMPLATE_PATH.read_text().replace("{{ model_id }}", "MODEL"))
    return path


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("invalid repo id", ValueError, "Invalid Hub repo id 'org/has space'"),
        ("nested repo id", ValueError, "Invalid Hub repo id 'a/b/c'"),
        ("no token", HubPushError, "No Hugging Face token"),
        ("no model", FileNotFoundError, "missing config.json, model.safetensors"),
        ("no feature extractor", FileNotFoundError, "missing preprocessor_config.json"),
        ("not a folder", FileNotFoundError, "is not a folder"),
        ("template missing a field", ModelCardError, "missing required field"),
        ("token in a file", HubPushError, "notes.txt contains your Hub token"),
        ("offline", HubPushError, "HF_HUB_OFFLINE"),
    ],
)
def test_bad_input_fails_before_any_request(hub, student, tmp_path, monkeypatch, no_saved_token, case, error, message):
    kwargs = {"token": TOKEN, "endpoint": hub.url}
    repo_id, folder = "org/ser-student", student
    if case == "invalid repo id":
        repo_id = "org/has space"
    elif case == "nested repo id":
        repo_id = "a/b/c"
    elif case == "no token":
        kwargs.pop("token")
    elif case == "no model":
        folder = tmp_path / "empty"
        folder.mkdir()
        (folder / "preprocessor_config.json").write_text("{}")
    elif case == "no feature extractor":
        (student / "preprocessor_config.json").unlink()
    elif case == "not a folder":
        folder = tmp_path / "missing"
    elif case == "template missing a field":
        kwargs["template_path"] = bad_template(tmp_path)
    elif case == "token in a file":
        (student / "notes.txt").write_text(f"my token is {TOKEN}")
    elif case == "offline":
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(error, match=message) as raised:
        push_to_hub(folder, repo_id, **kwargs)
    assert hub.requests == []
    assert TOKEN not in str(raised.value)


def test_push_command(hub, student, no_saved_token, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    push_main([str(student), "org/cli-student", "--private", "--endpoint", hub.url, "--commit_message", "cli"])
    captured = capsys.readouterr()
    assert "org/cli-student" in captured.out
    assert hub.commits[-1]["summary"] == "cli" and "README.md" in hub.files["org/cli-student"]
    assert hub.repos["org/cli-student"]["visibility"] == "private"
    assert TOKEN not in captured.out + captured.err


class _Payload:
    """A pickle that runs code when loaded: what a crafted training_args.bin would hold."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('the payload ran')",)


def test_pushing_a_folder_with_a_malicious_pickle_never_runs_it(hub, tmp_path):
    import pickle

    folder = save_student(tmp_path / "received")  # a folder someone else made
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Payload(proof)))
    assert proof.exists()  # the payload is live: unpickling it runs it
    marker = tmp_path / "pwned"
    (folder / "training_args.bin").write_bytes(pickle.dumps(_Payload(marker)))

    push_main([str(folder), "org/received", "--token", TOKEN, "--endpoint", hub.url])
    assert not marker.exists()
    uploaded = hub.files["org/received"]
    assert "README.md" in uploaded and "training_args.bin" not in uploaded
    assert 'model="org/received"' in uploaded["README.md"].decode()
    from hf_mtkd.hub import StudentCard

    StudentCard.from_output_dir(folder).save(folder)
    assert not marker.exists()


@pytest.mark.slow  # a fresh interpreter imports torch and transformers: 5-20 s
def test_push_command_in_a_fresh_process_honours_hf_endpoint(hub, student, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_XET="1", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "hf_mtkd.cli.main", "push", str(student), "org/env-student"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "README.md" in hub.files["org/env-student"] and TOKEN not in done.stdout + done.stderr


def test_push_command_keep_card_needs_a_readme(hub, student):
    with pytest.raises(FileNotFoundError, match="has no README.md"):
        push_main([str(student), "org/x", "--keep_card", "--token", TOKEN, "--endpoint", hub.url])
    assert hub.requests == []

"""Images: an OCI image layout, content-addressed layers, whiteouts, overlay roots, Docker export."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from support.containers import docker_ok, needs_root

from labkit.images import ImageError, ImageNotFound, ImageStore, layers


def test_busybox_image_is_an_oci_layout_with_every_applet(store):
    img = store.get("busybox")
    assert img.name == "busybox:latest"
    assert img.digest.startswith("sha256:") and len(img.layers) == 1
    assert img.config["Cmd"] == ["sh"] and any(e.startswith("PATH=") for e in img.config["Env"])
    root = store.root
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert "busybox:latest" in names
    with layers.open_layer(store.blob(img.layers[0].digest), img.layers[0].media_type) as tf:
        members = set(tf.getnames())
    for applet in ("bin/sh", "bin/true", "bin/hostname", "bin/ps", "usr/bin/env"):
        assert applet in members, applet


def test_every_blob_is_named_by_the_sha256_of_its_bytes(store):
    for blob in store.blobs.iterdir():
        if blob.name.startswith("."):
            continue
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_same_files_give_the_same_digest_in_another_store(store, tmp_path):
    other = ImageStore(tmp_path / "other")
    assert other.build_recipe("busybox").digest == store.get("busybox").digest


def test_changing_one_byte_changes_the_digest(store):
    a = store.build("lkct-bytes-a", base="busybox", add={"/msg": "hello\n"})
    b = store.build("lkct-bytes-b", base="busybox", add={"/msg": "hellp\n"})
    a2 = store.build("lkct-bytes-c", base="busybox", add={"/msg": "hello\n"})
    assert a.layers[0] == b.layers[0]  # the shared base layer is the same blob
    assert a.layers[1].digest != b.layers[1].digest
    assert a.digest != b.digest
    assert a2.digest == a.digest
    for n in ("lkct-bytes-a", "lkct-bytes-b", "lkct-bytes-c"):
        store.remove(n)


def test_deletion_is_recorded_as_a_whiteout(store):
    child = store.build("lkct-wh", base="busybox", delete=["/bin/vi"], add={"/etc/motd": "hi\n"})
    try:
        top = child.layers[-1]
        with layers.open_layer(store.blob(top.digest), top.media_type) as tf:
            names = tf.getnames()
        assert "bin/.wh.vi" in names and "etc/motd" in names
        assert child.diff_ids[:1] == store.get("busybox").diff_ids
    finally:
        store.remove("lkct-wh")


@needs_root
def test_overlay_root_hides_whiteouts_and_copies_on_write(store, tmp_path, no_leaks):
    child = store.build("lkct-cow", base="busybox", delete=["/bin/vi"])
    rootfs = store.prepare_rootfs(child, tmp_path / "rootfs")
    try:
        assert rootfs.mode == "overlay" and os.path.ismount(rootfs.path)
        assert not (rootfs.path / "bin/vi").exists()
        assert (rootfs.path / "bin/sh").exists()
        lower_passwd = rootfs.lowerdirs[-1] / "etc/passwd"
        before = lower_passwd.read_text()
        (rootfs.path / "etc/passwd").write_text(before + "lab:x:1000:1000::/:/bin/sh\n")
        assert lower_passwd.read_text() == before  # the image layer is untouched
        assert "lab:x" in (rootfs.upperdir / "etc/passwd").read_text()  # the write went up
        (rootfs.path / "bin/ls").unlink()
        st = os.lstat(rootfs.upperdir / "bin/ls")  # overlayfs' own whiteout: a 0/0 char device
        assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
    finally:
        rootfs.unmount()
        store.remove("lkct-cow")
    assert not os.path.exists(rootfs.path)


def test_copy_fallback_applies_whiteouts(store, tmp_path):
    child = store.build("lkct-copy", base="busybox", delete=["/bin/vi"])
    try:
        rootfs = store.prepare_rootfs(child, tmp_path / "rootfs", overlay=False)
        assert rootfs.mode == "copy" and "overlay" in rootfs.describe() or rootfs.note
        assert not (rootfs.path / "bin/vi").exists() and (rootfs.path / "bin/sh").is_symlink()
        rootfs.unmount()
        assert not rootfs.path.exists()
    finally:
        store.remove("lkct-copy")


def test_unknown_image_says_how_to_build_it(store):
    with pytest.raises(ImageNotFound, match="labkit image build busybox"):
        store.get("busybox:nope")
    with pytest.raises(ImageNotFound, match="no image nothing:latest"):
        store.get("nothing")
    with pytest.raises(ImageError, match="not a valid image name"):
        store.get("Bad Name!")


def test_remove_deletes_blobs_no_image_uses(store):
    child = store.build("lkct-rm", base="busybox", add={"/only-here": "x" * 100})
    top = child.layers[-1].digest.split(":")[1]
    assert (store.blobs / top).exists()
    store.remove("lkct-rm")
    assert not (store.blobs / top).exists()
    assert store.get("busybox")  # the shared base is still there
    with pytest.raises(ImageNotFound):
        store.remove("lkct-rm")


def test_docker_archive_has_the_same_config_and_layers(store, tmp_path):
    img = store.get("busybox")
    arch = tmp_path / "a.tar"
    arch.write_bytes(store.docker_archive(img))
    with tarfile.open(arch) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))[0]
        cfg = tf.extractfile(manifest["Config"]).read()
        layer = tf.extractfile(manifest["Layers"][0]).read()
    assert "sha256:" + hashlib.sha256(cfg).hexdigest() == img.config_digest
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == img.diff_ids[0]


@pytest.mark.docker
@pytest.mark.skipif(not docker_ok(), reason="needs a running Docker Engine")
def test_docker_runs_the_same_image_with_the_same_id(store):
    child = store.build("lkct-docker", base="busybox", add={"/hello.sh": "#!/bin/sh\necho from-labkit-image\n"},
                        cmd=["/hello.sh"])
    try:
        d = store.export_to_docker(child)
        assert d.ref == "labkit/lkct-docker:latest"
        assert d.id == child.config_digest  # Docker's image ID is the config's content digest
        assert d.diff_ids == child.diff_ids
        out = subprocess.run(["docker", "run", "--rm", d.ref], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "from-labkit-image"
    finally:
        subprocess.run(["docker", "rmi", "-f", "labkit/lkct-docker:latest"], capture_output=True)
        store.remove("lkct-docker")


def test_image_cli_build_ls_rm(tmp_path):
    env = dict(os.environ, LABKIT_IMAGES=str(tmp_path / "cli-images"))
    def labkit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "labkit.cli", "image", *args], capture_output=True,
                              text=True, env=env, timeout=120)
    out = labkit("build", "busybox")
    assert out.returncode == 0 and "digest  sha256:" in out.stdout
    assert "busybox:latest" in labkit("ls").stdout
    bad = labkit("rm", "nope")
    assert bad.returncode == 1 and "no image nope:latest" in bad.stderr and "Traceback" not in bad.stderr
    bad = labkit("build", "debian")
    assert bad.returncode == 1 and "known recipes: busybox" in bad.stderr
    assert labkit("rm", "busybox").returncode == 0
    assert "busybox" not in labkit("ls").stdout


@needs_root
def test_without_root_the_rootfs_is_a_copy_and_says_so(store):
    import shutil
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="lkct-nobody-"))
    os.chmod(shared, 0o777)
    code = (
        "import os; from labkit.images import ImageStore; s = ImageStore(os.environ['LABKIT_IMAGES']);"
        "img = s.ensure('busybox'); r = s.prepare_rootfs(img, os.environ['DEST']);"
        "print(r.mode); print(r.note); print(os.path.exists(r.path / 'bin/sh')); r.unmount()"
    )
    # nobody may not read this clone: a copy
    from support.another_user import as_user, interpreter, labkit_env

    env = dict(labkit_env(shared / "copy"), LABKIT_IMAGES=str(shared / "img"), DEST=str(shared / "rootfs"),
               HOME=str(shared))
    out = subprocess.run([*as_user(), interpreter(), "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, cwd="/")
    shutil.rmtree(shared, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    mode, note, has_sh = out.stdout.split("\n")[:3]
    assert mode == "copy" and "not root" in note and has_sh == "True"


def test_without_busybox_the_recipe_copies_host_programs_with_their_libraries(tmp_path, monkeypatch):
    from labkit.images import recipes

    monkeypatch.setattr(recipes, "find_busybox", lambda: None)
    own = ImageStore(tmp_path / "nobusybox")
    img = own.build_recipe("busybox")
    assert "host programs with their shared libraries" in img.full_config["history"][-1]["created_by"]
    with layers.open_layer(own.blob(img.layers[0].digest), img.layers[0].media_type) as tf:
        names = set(tf.getnames())
    assert "bin/sh" in names and "bin/ls" in names
    sh_libs = recipes.shared_libraries("/bin/sh")
    for lib in sh_libs:  # a dynamically linked shell brings its loader and libc along
        assert lib.lstrip("/") in names, lib
    if os.geteuid() == 0:
        rootfs = own.prepare_rootfs(img, tmp_path / "rootfs", overlay=False)
        try:
            out = subprocess.run(["chroot", str(rootfs.path), "/bin/sh", "-c", "echo works; ls /bin | head -3"],
                                 capture_output=True, text=True, timeout=30)
        finally:
            rootfs.unmount()
        assert out.stdout.startswith("works"), out.stderr


@needs_root
def test_plain_tar_layers_and_a_busy_destination(store, tmp_path, no_leaks):
    img = store.build("lkct-plain", base="busybox", add={"/plain.txt": "not compressed\n"}, compress=False)
    try:
        assert img.layers[-1].media_type == "application/vnd.oci.image.layer.v1.tar"
        assert img.layers[-1].digest == img.layers[-1].diff_id  # uncompressed: one digest for both
        rootfs = store.prepare_rootfs(img, tmp_path / "rootfs")
        try:
            assert (rootfs.path / "plain.txt").read_text() == "not compressed\n"
            with pytest.raises(ImageError, match="not empty"):
                store.prepare_rootfs(img, rootfs.path)
        finally:
            rootfs.unmount()
    finally:
        store.remove("lkct-plain")

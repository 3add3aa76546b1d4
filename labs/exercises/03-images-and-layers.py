"""Lab 3's exercises: build images from layers, and run them.

Each check opens the learner's image in labkit's OCI store (its manifest, its layer tarballs) and
then runs a real container from it on the native runtime, so an image that only looks right in
its index does not pass.
"""

from __future__ import annotations

from typing import Any

from labkit.practice import Exercise, Target, Verdict

NEEDS = ("root",)


def _store() -> Any:
    from labkit.images import ImageStore

    return ImageStore()


def _image(t: Target, base: str) -> tuple[Any, Any] | tuple[None, str]:
    """(store, image) or (None, hint)."""
    store = _store()
    name = t.name(base)
    try:
        return store, store.get(name)
    except Exception:  # noqa: BLE001 - ImageNotFound and a half-written index read the same to a learner
        return None, f"there is no image {name!r} in the store yet (labkit image ls lists them)"


def _run(image: str, cmd: list[str] | None) -> Any:
    import labkit.runtime

    return labkit.runtime.run(image, cmd, runtime="native", timeout=30)


def _layer_names(store: Any, layer: Any) -> list[str]:
    from labkit.images import layers

    with layers.open_layer(store.blob(layer.digest), layer.media_type) as tf:
        return [m.name.lstrip("./") for m in tf.getmembers()]


def _remove_image(name: str) -> None:
    from labkit.images import ImageError

    try:
        _store().remove(name)
    except ImageError:
        pass


# ---- 3.1: one more layer -------------------------------------------------------------------------
def _verify_motd(t: Target) -> Verdict:
    store, img = _image(t, "motd")
    if store is None:
        return Verdict.not_yet(f"{img}; build it with ImageStore().build(...)")
    base = store.ensure("busybox")
    if len(img.layers) <= len(base.layers) or img.layers[0].digest != base.layers[0].digest:
        return Verdict.not_yet(f"{img.name} has {len(img.layers)} layer(s); build it on busybox, so that it "
                               "shares busybox's layer and adds one of its own")
    r = _run(img.name, ["cat", "/etc/motd"])
    if r.exit_code != 0 or "welcome" not in r.stdout:
        return Verdict.not_yet(f"a container from {img.name} printed {r.stdout.strip()[:80]!r} for cat /etc/motd; "
                               "the new layer must add /etc/motd with a line containing 'welcome'")
    return Verdict.ok(f"{img.name}: busybox's layer {base.layers[0].digest[:19]}... plus "
                      f"{len(img.layers) - len(base.layers)} new layer(s); a container prints {r.stdout.strip()!r}")


def _solve_motd(t: Target) -> None:
    _store().build(t.name("motd"), base="busybox", add={"/etc/motd": "welcome to my first layer\n"})


# ---- 3.2: deleting a file is a whiteout -------------------------------------------------------
def _verify_slim(t: Target) -> Verdict:
    store, img = _image(t, "slim")
    if store is None:
        return Verdict.not_yet(f"{img}; build it on busybox with delete=[...]")
    base = store.ensure("busybox")
    if len(img.layers) <= len(base.layers):
        return Verdict.not_yet(f"{img.name} adds no layer to busybox")
    top = _layer_names(store, img.layers[-1])
    if "bin/.wh.vi" not in top:
        return Verdict.not_yet(f"{img.name}'s top layer holds {top[:6]} but no whiteout for /bin/vi (bin/.wh.vi)")
    if "bin/vi" not in _layer_names(store, img.layers[0]):
        return Verdict.not_yet("busybox's own layer has no bin/vi: rebuild busybox (labkit image build busybox)")
    r = _run(img.name, ["sh", "-c", "ls /bin/vi 2>/dev/null && echo vi-is-there; ls /bin/sh"])
    if "vi-is-there" in r.stdout or "/bin/sh" not in r.stdout:
        return Verdict.not_yet(f"a container from {img.name} printed {r.stdout.strip()!r}: /bin/vi must be gone "
                               "and /bin/sh still there")
    return Verdict.ok(f"{img.name}: the top layer's whiteout bin/.wh.vi hides /bin/vi, which busybox's layer "
                      "below still holds; the container has /bin/sh and no /bin/vi")


def _solve_slim(t: Target) -> None:
    _store().build(t.name("slim"), base="busybox", delete=["/bin/vi"])


# ---- 3.3: the image's config decides what runs ---------------------------------------------------
def _verify_greeter(t: Target) -> Verdict:
    store, img = _image(t, "greeter")
    if store is None:
        return Verdict.not_yet(f"{img}; build it with cmd=[...] and env={{...}}")
    env = dict(e.split("=", 1) for e in img.config.get("Env") or [])
    greeting = env.get("GREETING", "")
    if not greeting:
        return Verdict.not_yet(f"{img.name}'s config sets no GREETING variable (Env: {list(env)})")
    r = _run(img.name, None)  # no command: the image's own Cmd runs
    if r.exit_code != 0 or r.stdout.strip() != greeting:
        return Verdict.not_yet(f"run with no command, {img.name} printed {r.stdout.strip()[:80]!r} (exit "
                               f"{r.exit_code}); its Cmd must print $GREETING, which is {greeting!r}")
    return Verdict.ok(f"{img.name}: Cmd {img.config.get('Cmd')} with Env GREETING={greeting!r} printed "
                      f"{r.stdout.strip()!r}; both come from the config blob {img.config_digest[:19]}...")


def _solve_greeter(t: Target) -> None:
    _store().build(t.name("greeter"), base="busybox", cmd=["sh", "-c", "echo $GREETING"],
                   env={"GREETING": "hello from the image config"})


EXERCISES = [
    Exercise(
        id="3.1",
        title="Add a layer",
        statement="""Build an image named `ex-motd` on top of `busybox` whose new layer adds the file
`/etc/motd` with a line containing `welcome` (`ImageStore().build(...)`, as in the lab). The
check opens its manifest (does it share busybox's layer and add its own?) and runs a container
from it that prints the file.""",
        verify=_verify_motd,
        solution=_solve_motd,
        solution_text="""```python
from labkit.images import ImageStore
ImageStore().build("ex-motd", base="busybox", add={"/etc/motd": "welcome to my first layer\\n"})
```""",
        cleanup=lambda t: _remove_image(t.name("motd")),
        concept="image layers",
        difficulty="easy",
        needs=NEEDS,
    ),
    Exercise(
        id="3.2",
        title="Delete a file without touching the layer below",
        statement="""Build `ex-slim` on `busybox` without `/bin/vi`. Layers are never changed, so the
deletion must be a new layer. The check looks inside your top layer's tarball for the overlay
*whiteout* that records the deletion, checks that busybox's layer still holds `vi`, and runs a
container from `ex-slim` that must have `/bin/sh` but no `/bin/vi`.""",
        verify=_verify_slim,
        solution=_solve_slim,
        solution_text="""```python
ImageStore().build("ex-slim", base="busybox", delete=["/bin/vi"])   # a bin/.wh.vi entry in the new layer
```""",
        cleanup=lambda t: _remove_image(t.name("slim")),
        concept="whiteouts",
        difficulty="medium",
        needs=NEEDS,
    ),
    Exercise(
        id="3.3",
        title="What runs when you give no command",
        statement="""Build `ex-greeter` on `busybox` so that a container started **without a command** prints
the value of an environment variable `GREETING` that the image itself sets. Files go in layers;
the default command and the environment go in the image's config. The check runs the image with
no command and compares the output with the `GREETING` in its config.""",
        verify=_verify_greeter,
        solution=_solve_greeter,
        solution_text="""```python
ImageStore().build("ex-greeter", base="busybox", cmd=["sh", "-c", "echo $GREETING"],
                   env={"GREETING": "hello from the image config"})
```""",
        cleanup=lambda t: _remove_image(t.name("greeter")),
        concept="the image config (Cmd, Env)",
        difficulty="medium",
        needs=NEEDS,
    ),
]

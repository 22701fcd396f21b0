"""Files npae did not write: every outcome of loading one is the model the file faithfully
describes or a ModelFileError, never another exception, and never an allocation the file
asked for before it was checked (the peak memory of each load is measured with tracemalloc,
which sees NumPy's arrays)."""

import io as _io
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npae
from npae.files.io import META, ModelFileError

#: the most a load of a small file may allocate: the model itself (~100 KB here), building's
#: allowance beyond what the file stores (2**20 values and their gradients, 8 MiB) and the
#: bookkeeping; far below any size a hostile description asks for
PEAK_BUDGET = 12 << 20


def tiny_model():
    rng = np.random.default_rng(0)
    return npae.Autoencoder(npae.Sequential(npae.Dense(12, 4, rng=rng), npae.ReLU()),
                            npae.Sequential(npae.Dense(4, 12, rng=rng), npae.Sigmoid()),
                            loss="bce", code_penalty=npae.objectives.L1Activity(0.1), input_shape=(12,), name="tiny")


def npy(array=None, *, shape=None, descr=None, fortran=False, payload=None, version=(1, 0)) -> bytes:
    """An .npy member: the header of ``shape``/``descr`` (default: the array's) and ``payload`` (default: its bytes)."""
    if array is not None:
        shape = array.shape if shape is None else shape
        descr = np.lib.format.dtype_to_descr(array.dtype) if descr is None else descr
        payload = array.tobytes() if payload is None else payload
    header = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode("latin1")
    pad = (-(len(header) + 11)) % 64
    header += b" " * pad + b"\n"
    size = struct.pack("<H", len(header)) if version == (1, 0) else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes(version) + size + header + (payload or b"")


def members_of(model) -> dict:
    """The members save() writes, as .npy bytes."""
    arrays = npae.files.io._model_arrays(model, "model")
    return {f"{k}.npy": npy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def write_zip(path, members: dict, compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)


def description(members: dict) -> dict:
    raw = members[f"{META}.npy"]
    return json.loads(np.lib.format.read_array(_io.BytesIO(raw)).tobytes())


def with_description(members: dict, meta) -> dict:
    text = meta if isinstance(meta, (bytes, str)) else json.dumps(meta)
    data = np.frombuffer(text.encode() if isinstance(text, str) else text, np.uint8)
    return {**members, f"{META}.npy": npy(data)}


def measured_load(path):
    """``(outcome, peak bytes)``: the loaded model or the ModelFileError; anything else propagates."""
    tracemalloc.start()
    try:
        try:
            outcome = npae.load(path)
        except ModelFileError as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_refused(path, fragment):
    outcome, peak = measured_load(path)
    assert isinstance(outcome, ModelFileError), outcome
    assert fragment in str(outcome), str(outcome)
    assert "pickle" not in str(outcome).lower()
    assert peak < PEAK_BUDGET, f"peak {peak:,} bytes"
    return outcome


# -- the cases of the issue, one by one ------------------------------------------------------------
def test_a_description_asking_for_a_huge_layer_is_refused_before_allocating(tmp_path):
    members = members_of(tiny_model())
    for n_out in (400_000, 10 ** 9, 10 ** 30):
        meta = description(members)
        meta["model"]["encoder"]["layers"][0]["n_out"] = n_out
        write_zip(tmp_path / "huge.npz", with_description(members, meta))
        assert_refused(tmp_path / "huge.npz", "asks for more weights than the file holds")


def test_a_member_that_claims_to_inflate_to_gigabytes_is_refused_unread(tmp_path):
    members = members_of(tiny_model())
    # the header says 2**30 float32 (4 GiB); the zip directory is patched to agree, so the
    # archive looks consistent and only the bound on values stops it, before any inflating
    bomb = npy(shape=(2 ** 30,), descr="<f4")
    write_zip(tmp_path / "bomb.npz", {**members, "param/encoder.0.W.npy": bomb})
    data = bytearray((tmp_path / "bomb.npz").read_bytes())
    claimed = len(bomb) + 4 * 2 ** 30
    # the member's sizes in its local header and in the central directory (ZIP_STORED: 32-bit fields
    # cannot hold 4 GiB, so claim the most they can: the check on values must fire either way)
    index = data.find(b"param/encoder.0.W.npy")
    assert index > 0
    with zipfile.ZipFile(tmp_path / "bomb.npz") as z:
        info = z.getinfo("param/encoder.0.W.npy")
    for offset in (info.header_offset + 22, data.rfind(b"param/encoder.0.W.npy") - 46 + 24):
        data[offset:offset + 4] = struct.pack("<I", min(claimed, 2 ** 32 - 1))
    (tmp_path / "bomb.npz").write_bytes(bytes(data))
    assert_refused(tmp_path / "bomb.npz", "")


def test_a_real_deflate_bomb_is_never_inflated(tmp_path):
    """64 MiB of zeros compressed to 64 KB, in place of a 12 x 4 matrix: refused from its header."""
    members = members_of(tiny_model())
    zeros = np.zeros(16 << 20, np.float32)
    write_zip(tmp_path / "bomb.npz", {**members, "param/encoder.0.W.npy": npy(zeros)}, zipfile.ZIP_DEFLATED)
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    assert_refused(tmp_path / "bomb.npz", "param/encoder.0.W is float32 (16777216,)")


def test_deep_json_is_a_model_file_error(tmp_path):
    members = members_of(tiny_model())
    write_zip(tmp_path / "deep.npz", with_description(members, "[" * 5000 + "]" * 5000))
    assert_refused(tmp_path / "deep.npz", "nested more than")
    meta = description(members)
    meta["model"]["name"] = {"a": [[{"b": [1]}]] * 3}
    for _ in range(80):
        meta["model"]["name"] = [meta["model"]["name"]]
    write_zip(tmp_path / "deep2.npz", with_description(members, meta))
    assert_refused(tmp_path / "deep2.npz", "nested more than")


def test_a_bare_npy_and_random_bytes(tmp_path):
    np.save(tmp_path / "bare.npy", np.zeros(3))
    assert_refused(tmp_path / "bare.npy", "a bare .npy array")
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).bytes(5000))
    assert_refused(tmp_path / "random.npz", "not a zip archive")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert_refused(tmp_path / "empty.npz", "not a zip archive")


def test_object_arrays_and_foreign_members_are_refused(tmp_path):
    members = members_of(tiny_model())
    write_zip(tmp_path / "obj.npz", {**members, "param/encoder.0.W.npy": npy(shape=(12, 4), descr="|O")})
    assert_refused(tmp_path / "obj.npz", "npae reads only numbers")
    write_zip(tmp_path / "extra.npz", {**members, "evil.py": b"import os"})
    assert_refused(tmp_path / "extra.npz", "unexpected member")
    write_zip(tmp_path / "stranger.npz", {**members, "notes.npy": npy(np.zeros(2))})
    assert_refused(tmp_path / "stranger.npz", "unexpected member 'notes'")


def test_a_lying_member_size_is_refused(tmp_path):
    members = members_of(tiny_model())
    w = np.zeros((12, 4), np.float32)
    write_zip(tmp_path / "short.npz", {**members, "param/encoder.0.W.npy": npy(w, payload=w.tobytes()[:-4])})
    assert_refused(tmp_path / "short.npz", "holds 316 bytes, but its header describes 320 (float32 (12, 4))")


def test_everything_save_writes_load_reads(tmp_path):
    rng = np.random.default_rng(0)
    seq = npae.Sequential(npae.Dense(784, 64, rng=rng), npae.ReLU(), npae.Dense(64, 784, rng=rng), npae.Sigmoid())
    npae.save(seq, tmp_path / "seq.npz")
    loaded = npae.load(tmp_path / "seq.npz")
    assert isinstance(loaded, npae.Sequential) and loaded.config() == seq.config()
    x = rng.random((3, 784)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x, training=False), seq.forward(x, training=False))
    npae.save(npae.Conv2D(1, 2, 3, rng=rng), tmp_path / "conv.npz")
    assert isinstance(npae.load(tmp_path / "conv.npz"), npae.Conv2D)


def test_save_refuses_what_load_could_not_read(tmp_path):
    class Mine(npae.Dense):  # a subclass npae's registry does not know
        pass

    with pytest.raises(ValueError, match="not in npae's registry"):
        npae.save(npae.Sequential(Mine(3, 2)), tmp_path / "mine.npz")

    class MyPenalty(npae.objectives.penalties.L1Activity):
        pass

    model = npae.Autoencoder(npae.Dense(3, 2), npae.Dense(2, 3), code_penalty=MyPenalty(0.1))
    with pytest.raises(ValueError, match="MyPenalty"):
        npae.save(model, tmp_path / "pen.npz")
    custom = npae.Autoencoder(npae.Dense(3, 2), npae.Dense(2, 3), loss=npae.objectives.losses.mse)
    with pytest.raises(ValueError, match="custom loss"):
        npae.save(custom, tmp_path / "loss.npz")
    assert not list(tmp_path.iterdir())  # nothing was written


def test_save_into_a_missing_folder_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        npae.save(tiny_model(), tmp_path / "nowhere" / "m.npz")
    assert ".tmp-" not in str(info.value) and "m.npz" in str(info.value)


def test_stale_temporaries_of_a_killed_save_are_removed(tmp_path):
    path = tmp_path / "m.npz"
    (tmp_path / ".m.npz.tmp-999999999").write_bytes(b"x" * 1000)  # a process that no longer exists
    npae.save(tiny_model(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# -- fuzzing: every field of the description, every header -------------------------------------------
def leaves(value, path=()):
    """Every path into a JSON value (dict keys and list indices), the value's own first."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, path + (i,))


def set_at(value, path, new):
    if not path:
        return new
    value = json.loads(json.dumps(value))
    target = value
    for key in path[:-1]:
        target = target[key]
    if new is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return value


DELETE = object()
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False)
                    | st.text(max_size=8) | st.sampled_from([0, -1, 1, 10 ** 9, 784, 4, 12, "Dense", "ReLU",
                                                            "Sequential", "same", "float64", "float16"]),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)
MEMBERS = members_of(tiny_model())
META_PATHS = list(leaves(description(MEMBERS)))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_outcome(path):
    outcome, peak = measured_load(path)
    assert peak < PEAK_BUDGET, f"peak {peak:,} bytes"
    if isinstance(outcome, ModelFileError):
        assert "pickle" not in str(outcome).lower()
        return outcome
    # a load that succeeds gives the model the file describes, with the file's arrays
    with zipfile.ZipFile(path) as z:
        meta = json.loads(np.lib.format.read_array(z.open(f"{META}.npy")).tobytes())
        assert outcome.config() == npae.files.io.build(meta["model"]).config()
        for name, p in outcome.named_params():
            np.testing.assert_array_equal(p.value, np.lib.format.read_array(z.open(f"param/{name}.npy")))
    return outcome


@FUZZ
@given(where=st.sampled_from(META_PATHS), new=JSON | st.just(DELETE))
def test_fuzz_every_field_of_the_description(tmp_path, where, new):
    if new is DELETE and not where:
        new = None
    meta = set_at(description(MEMBERS), where, new)
    write_zip(tmp_path / "m.npz", with_description(MEMBERS, meta))
    check_outcome(tmp_path / "m.npz")


@FUZZ
@given(member=st.sampled_from(sorted(MEMBERS)),
       shape=st.lists(st.integers(0, 2 ** 40), max_size=4).map(tuple),
       descr=st.sampled_from(["<f4", "<f8", ">f4", "<f2", "|u1", "<i8", "|b1", "|O", "<c16", "<U3", "V8", "<f4"]),
       fortran=st.booleans(), keep_payload=st.booleans(), version=st.sampled_from([(1, 0), (2, 0), (9, 9)]))
def test_fuzz_every_member_header(tmp_path, member, shape, descr, fortran, keep_payload, version):
    original = np.lib.format.read_array(_io.BytesIO(MEMBERS[member]))
    payload = original.tobytes() if keep_payload else b"\x00" * min(4 * int(np.prod(shape, dtype=object) or 0), 4096)
    members = {**MEMBERS, member: npy(shape=shape, descr=descr, fortran=fortran, payload=payload, version=version)}
    write_zip(tmp_path / "m.npz", members)
    check_outcome(tmp_path / "m.npz")


@FUZZ
@given(data=st.data())
def test_fuzz_bytes_of_the_file(tmp_path, data):
    write_zip(tmp_path / "good.npz", MEMBERS, zipfile.ZIP_DEFLATED)
    raw = bytearray((tmp_path / "good.npz").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    (tmp_path / "m.npz").write_bytes(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))
    check_outcome(tmp_path / "m.npz")

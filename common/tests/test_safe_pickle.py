import pickle

import numpy as np
import pytest

from common import safe_pickle
from common.errors import UserError
from common.testing import malicious_pickle


def test_python2_pickle_of_strings_and_arrays(tmp_path):
    # hand-written protocol-2 pickle as Python 2 writes {'key': 'value'} (SHORT_BINSTRING 'U')
    py2 = b"\x80\x02}q\x00U\x03keyq\x01U\x05valueq\x02s."
    (tmp_path / "a.pkl").write_bytes(py2)
    assert safe_pickle.load(tmp_path / "a.pkl") == {"key": "value"}
    data = {"att": np.arange(6, dtype=np.int64).reshape(2, 3), "names": ["a", "b"], "n": np.float64(0.5),
            "blob": b"\xff\xd8jpeg"}
    (tmp_path / "b.pkl").write_bytes(pickle.dumps(data, protocol=2))
    got = safe_pickle.load(tmp_path / "b.pkl")
    assert np.array_equal(got["att"], data["att"]) and got["names"] == ["a", "b"] and got["n"] == 0.5
    assert got["blob"] == b"\xff\xd8jpeg"


def test_code_in_a_data_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = malicious_pickle(tmp_path / "evil.pkl", marker)
    with pytest.raises(UserError) as info:
        safe_pickle.load(path, what="partitions file")
    assert not marker.exists()
    assert str(path) in str(info.value) and "system" in str(info.value)


def test_truncated_and_missing(tmp_path):
    (tmp_path / "t.pkl").write_bytes(pickle.dumps({"a": [1, 2, 3]})[:-4])
    with pytest.raises(UserError, match="cannot read"):
        safe_pickle.load(tmp_path / "t.pkl")
    with pytest.raises(UserError, match="not found"):
        safe_pickle.load(tmp_path / "none.pkl")


def test_expect_names_the_shape():
    with pytest.raises(UserError, match="holds a int, expected a dict"):
        safe_pickle.expect(3, dict, "x.pkl", "dataset file")

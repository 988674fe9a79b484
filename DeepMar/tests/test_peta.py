import numpy as np
import pytest
import scipy.io
import torch
from deepmar import peta
from deepmar.model import DeepMAR

from common import safe_pickle
from common.errors import UserError
from common.testing import state_dict_rows, upstream_keys

from .conftest import MODEL_DIR, ROOT  # noqa: F401  (sys.path set up there)


def write_tiny_mat(path, n=6):
    """The real struct layout, built directly with scipy: labels in columns 4..108."""
    data = np.zeros((n, 109))
    data[:, 0] = np.arange(1, n + 1)
    data[:, 4] = [1, 0, 1, 0, 1, 1]        # label 0
    data[:, 5] = [0, 0, 0, 1, 1, 1]        # label 1
    attribute = np.empty((105, 1), dtype=object)
    for i in range(105):
        attribute[i, 0] = np.array([f"att{i}"])
    parts = np.empty((5, 1), dtype=object)
    for p in range(5):
        parts[p, 0] = {"train": np.array([[1], [2], [3]], float), "val": np.array([[4]], float),
                       "test": np.array([[5], [6]], float)}
    scipy.io.savemat(path, {"peta": {"data": data, "attribute": attribute,
                                     "selected_attribute": np.arange(1, 36).reshape(1, -1).astype(float),
                                     "partion_attribute": parts}})


def test_transform_keys_and_values(tmp_path):
    write_tiny_mat(tmp_path / "PETA.mat")
    peta.transform(str(tmp_path))
    ds = safe_pickle.load(tmp_path / "peta_dataset.pkl")
    pa = safe_pickle.load(tmp_path / "peta_partition.pkl")
    assert sorted(ds) == ["att", "att_name", "description", "image", "root", "selected_attribute"]
    assert ds["image"][:2] == ["00001.png", "00002.png"] and ds["description"] == "peta"
    assert ds["att_name"][3] == "att3" and ds["selected_attribute"] == list(range(35))
    assert len(ds["att"][0]) == 105 and ds["att"][3][:2] == [0, 1]
    assert sorted(pa) == ["test", "train", "trainval", "val", "weight_train", "weight_trainval"]
    assert pa["train"][0] == [0, 1, 2] and pa["val"][0] == [3] and pa["test"][4] == [4, 5]
    assert pa["trainval"][0] == [0, 1, 2, 3]               # train first, then val
    assert np.allclose(pa["weight_train"][0][:2], [2 / 3, 0])  # label 0 on images 1..3: 1,0,1
    assert np.allclose(pa["weight_trainval"][0][:2], [2 / 4, 1 / 4])


def test_wrong_mat_layout_is_one_clear_error(tmp_path):
    scipy.io.savemat(tmp_path / "PETA.mat", {"peta": {"data": np.zeros((3, 50))}})
    with pytest.raises(UserError, match="PETA layout|peta.data"):
        peta.read_peta_mat(str(tmp_path / "PETA.mat"))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "PETA.mat").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read"):
        peta.read_peta_mat(str(tmp_path / "x" / "PETA.mat"))


def test_reads_python2_protocol0_pickles(tmp_path):
    # what Python 2 cPickle.dump(..., 'w+') writes: protocol 0, byte strings (S opcode)
    ds = (b"(dp0\nS'image'\np1\n(lp2\nS'00001.png'\np3\naS'00002.png'\np4\nas"
          b"S'att'\np5\n(lp6\n(lp7\nI1\naI0\naa(lp8\nI0\naI2\naas"
          b"S'att_name'\np9\n(lp10\nS'personalLess30'\np11\naS'personalLess45'\np12\nas"
          b"S'selected_attribute'\np13\n(lp14\nI0\naI1\nas.")
    pa = (b"(dp0\nS'train'\np1\n(lp2\n(lp3\nI0\naasS'val'\np4\n(lp5\n(lp6\nas"
          b"S'test'\np7\n(lp8\n(lp9\nI1\naasS'trainval'\np10\n(lp11\n(lp12\nI0\naas"
          b"S'weight_trainval'\np13\n(lp14\n(lp15\nF0.5\naF0.25\naas.")
    (tmp_path / "peta_dataset.pkl").write_bytes(ds)
    (tmp_path / "peta_partition.pkl").write_bytes(pa)
    dataset, partition = peta.load_prepared(str(tmp_path))
    assert dataset["image"] == ["00001.png", "00002.png"] and dataset["att_name"][0] == "personalLess30"
    assert dataset["att"].tolist() == [[1, 0], [0, 2]] and dataset["selected_attribute"] == [0, 1]
    assert partition["test"] == [[1]]
    # training target remap 0 -> -1, 2 -> 0; evaluation keeps the raw label
    train = peta.PetaDataset(str(tmp_path), dataset, partition, "trainval")
    test = peta.PetaDataset(str(tmp_path), dataset, partition, "test", train_target=False)
    assert train.labels.tolist() == [[1, -1], [-1, 0]] and test.labels.tolist() == [[1, 0], [0, 2]]
    assert np.allclose(peta.positive_ratio(partition, "trainval", 0, [0, 1]), [0.5, 0.25])


def test_missing_image_is_named(tmp_path):
    write_tiny_mat(tmp_path / "PETA.mat")
    dataset, partition = peta.prepare_if_needed(str(tmp_path))
    ds = peta.PetaDataset(str(tmp_path), dataset, partition, "train")
    with pytest.raises(UserError, match="00001.png"):
        ds.check_files()


def test_state_dict_matches_upstream_keys_and_count():
    model = DeepMAR(35, "resnet50")
    expected = upstream_keys("deepmar_resnet50_35att")
    assert len(expected) == 320 and expected[0] == ("base.conv1.weight", "(64, 3, 7, 7)")
    assert state_dict_rows(model.state_dict()) == expected
    assert sum(p.numel() for p in model.parameters()) == 23_579_747
    # 224x224 -> 2048x7x7 map, stride 1 -> 14x14
    with torch.no_grad():
        assert model.base.eval()(torch.zeros(1, 3, 224, 224)).shape == (1, 2048, 7, 7)
        m1 = DeepMAR(35, "resnet50_tiny", last_conv_stride=1).eval()
        assert m1.base(torch.zeros(1, 3, 224, 224)).shape[-1] == 14


def test_arch_is_read_off_the_keys():
    from deepmar.model import infer_arch

    assert infer_arch(DeepMAR(35, "resnet50_tiny").state_dict()) == "resnet50_tiny"
    assert infer_arch({"module." + k: v for k, v in DeepMAR(35, "resnet50").state_dict().items()}) == "resnet50"
    assert infer_arch({"fc.weight": torch.zeros(1)}) is None


def test_param_groups_and_init():
    model = DeepMAR(35, "resnet50_tiny")
    finetuned, new = model.param_groups()
    assert [p.shape for p in new] == [torch.Size([35, 512]), torch.Size([35])]
    assert len(finetuned) == len(list(model.parameters())) - 2
    w, b = model.classifier.weight.detach(), model.classifier.bias.detach()
    assert float(b.abs().max()) == 0.0 and 0.0008 < float(w.std()) < 0.0012  # N(0, 0.001^2)


def test_transform_tool_cli(tmp_path, capsys):
    from .conftest import load_cli

    tool = load_cli("tools/transform_peta")
    write_tiny_mat(tmp_path / "PETA.mat")
    tool.main([f"--save_dir={tmp_path}"])
    assert "train 3, val 1, test 2, trainval 4" in capsys.readouterr().out
    bad = tmp_path / "bad"
    bad.mkdir()
    scipy.io.savemat(bad / "PETA.mat", {"other": np.zeros(3)})
    with pytest.raises(SystemExit) as exc:
        tool.main([f"--save_dir={bad}"])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and len(err.strip().splitlines()) == 1 and "PETA layout" in err

"""Config: detectron2 full dumps accepted, _BASE_ inheritance, unknown keys and bad types refused."""
import pytest

from inference.config import ConfigError, get_cfg, load_config

DUMPS = ["detectron2_cascade_mask_rcnn_R_50_FPN_3x_config.yaml", "detectron2_mask_rcnn_R_50_FPN_3x_config.yaml",
         "detectron2_cascade_small/config.yaml"]


@pytest.mark.parametrize("name", DUMPS)
def test_full_dumps_load(name, shared_fixtures):
    cfg = load_config(shared_fixtures / name)
    assert cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
    assert cfg.MODEL.ROI_HEADS.NAME in ("CascadeROIHeads", "StandardROIHeads")


def test_defaults_are_detectron2s():
    cfg = get_cfg()
    assert cfg.MODEL.RPN.PRE_NMS_TOPK_TEST == 6000
    assert cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeads"
    assert cfg.MODEL.PIXEL_MEAN == [103.53, 116.28, 123.675]
    assert cfg.INPUT.FORMAT == "BGR" and cfg.MODEL.RESNETS.NORM == "FrozenBN"


def test_base_inheritance(tmp_path):
    (tmp_path / "Base.yaml").write_text(
        "MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 6\n    NAME: StandardROIHeads\n  MASK_ON: true\nINPUT:\n  MIN_SIZE_TEST: 512\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Mid.yaml").write_text("_BASE_: ../Base.yaml\nMODEL:\n  ROI_HEADS:\n    NAME: CascadeROIHeads\n")
    (tmp_path / "sub" / "Top.yaml").write_text("_BASE_: Mid.yaml\nINPUT:\n  MIN_SIZE_TEST: 600\nSOLVER:\n  BASE_LR: 1\n")
    cfg = load_config(tmp_path / "sub" / "Top.yaml")
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 6
    assert cfg.MODEL.ROI_HEADS.NAME == "CascadeROIHeads"
    assert cfg.MODEL.MASK_ON is True
    assert cfg.INPUT.MIN_SIZE_TEST == 600
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.MODEL.RPN.NMS_THRESH == 0.7  # default kept


def test_unknown_key_named(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("MODEL:\n  ROI_HEADS:\n    NUM_CLASSSES: 3\n")
    with pytest.raises(ConfigError, match=r"MODEL\.ROI_HEADS\.NUM_CLASSSES"):
        load_config(p)


def test_wrong_type_and_overrides(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("MODEL:\n  RESNETS:\n    DEPTH: fifty\n")
    with pytest.raises(ConfigError, match=r"MODEL\.RESNETS\.DEPTH"):
        load_config(p)
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0", "INPUT.MIN_SIZE_TRAIN", "(640, 672)"])
    assert cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST == 0.0
    with pytest.raises(ConfigError, match="NOPE"):
        cfg.merge_from_list(["MODEL.NOPE", "1"])
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3  # attribute assignment
    assert load_config  # noqa
    assert "NUM_CLASSES: 3" in cfg.dump()

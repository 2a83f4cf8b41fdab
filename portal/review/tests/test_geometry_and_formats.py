import math

import pytest

from portal.review.lib.formats import micromanager_position_list, qupath_points, rows_to_csv
from portal.review.lib.geometry import GeometryError, circle_polygon, clean_polygon, measure_polygon
from portal.review.lib.stage import cell_stage_position


def test_a_square_polygon_measures_its_area_centroid_and_diameter():
    m = measure_polygon([[10, 10], [30, 10], [30, 30], [10, 30]], width=100, height=80, um_per_px=0.5)
    assert m.area_px == pytest.approx(400, rel=0.03)
    assert (m.centroid_x_px, m.centroid_y_px) == (pytest.approx(20, abs=0.6), pytest.approx(20, abs=0.6))
    assert m.diameter_um == pytest.approx(2 * math.sqrt(m.area_px / math.pi) * 0.5)
    assert m.area_um2 == pytest.approx(m.area_px * 0.25)
    assert m.rle["size"] == [80, 100] and isinstance(m.rle["counts"], str)
    assert m.box[0] == pytest.approx(10, abs=1) and m.box[2] == pytest.approx(30, abs=1)


def test_the_circle_tool_gives_the_typical_diameter():
    pts = circle_polygon(cx=50, cy=50, radius_px=3.5 / 0.1, vertices=24)
    m = measure_polygon(pts, width=200, height=200, um_per_px=0.1)
    assert m.diameter_um == pytest.approx(7.0, rel=0.03)


def test_it_refuses_degenerate_polygons():
    with pytest.raises(GeometryError):
        clean_polygon([[1, 1], [2, 2]], width=10, height=10)
    with pytest.raises(GeometryError):
        clean_polygon([[1, 1], [2, "x"], [3, 3]], width=10, height=10)
    with pytest.raises(GeometryError):
        clean_polygon([[1, 1], [float("nan"), 2], [3, 3]], width=10, height=10)


def test_vertices_outside_the_image_are_clipped():
    assert clean_polygon([[-5, 3], [500, 3], [4, 900]], width=100, height=50) == [[0, 3], [100, 3], [4, 50]]


@pytest.mark.parametrize("flip_x,flip_y,rotation,expected", [
    (False, False, 0, (1010.0, 2005.0)),
    (True, False, 0, (990.0, 2005.0)),
    (False, True, 0, (1010.0, 1995.0)),
    (False, False, 90, (995.0, 2010.0)),
    (False, False, 180, (990.0, 1995.0)),
    (False, False, 270, (1005.0, 1990.0)),
])
def test_stage_position_follows_the_session_orientation(flip_x, flip_y, rotation, expected):
    # a cell 100 px right of and 50 px below the centre of a 1000x800 image at 0.1 µm/px
    pos = cell_stage_position(centroid_x_px=600, centroid_y_px=450, width=1000, height=800, um_per_px=0.1,
                              stage_x_um=1000, stage_y_um=2000, flip_x=flip_x, flip_y=flip_y, rotation=rotation)
    assert pos == pytest.approx(expected)


def test_micromanager_position_list_is_a_property_map_with_position_um_per_xy_stage():
    doc = micromanager_position_list([{"label": "hRS-001", "x_um": 1.5, "y_um": -2, "properties": {"a": 1}}],
                                     xy_stage="XY")
    assert doc["format"] == "Micro-Manager Property Map" and doc["major_version"] == 2
    pos = doc["map"]["StagePositions"]["array"][0]
    assert pos["Label"] == {"type": "STRING", "scalar": "hRS-001"}
    device = pos["DevicePositions"]["array"][0]
    assert device["Device"]["scalar"] == "XY"
    assert device["Position_um"] == {"type": "DOUBLE", "array": [1.5, -2.0]}
    assert pos["Properties"]["scalar"]["a"] == {"type": "STRING", "scalar": "1"}


def test_qupath_points_are_pixel_points():
    doc = qupath_points([{"x_px": 3, "y_px": 4, "name": "#1", "class_name": "round_spermatid"}])
    f = doc["features"][0]
    assert f["geometry"] == {"type": "Point", "coordinates": [3.0, 4.0]}
    assert f["properties"]["classification"]["name"] == "round_spermatid"


def test_csv_writes_blanks_for_missing_values():
    assert rows_to_csv(["a", "b"], [[1, None]]) == "a,b\n1,\n"

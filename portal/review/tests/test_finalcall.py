from portal.review.lib.finalcall import agreement, final_call


def test_adjudication_wins_over_reviewers():
    call = final_call(detection_class="round_spermatid", decisions=[("accept", ""), ("accept", "")],
                      adjudication=("reject", ""))
    assert (call.verdict, call.class_name, call.decided_by) == ("reject", "round_spermatid", "adjudication")


def test_unanimous_reviewers_decide_when_no_adjudication():
    call = final_call(detection_class="erythrocyte", decisions=[("accept", "round_spermatid"),
                                                                ("accept", "round_spermatid")], adjudication=None)
    assert (call.verdict, call.class_name, call.decided_by) == ("accept", "round_spermatid", "unanimous:2")


def test_a_disagreement_has_no_final_call():
    assert final_call(detection_class="x", decisions=[("accept", ""), ("reject", "")], adjudication=None) is None


def test_same_verdict_different_class_is_a_disagreement():
    decisions = [("accept", ""), ("accept", "spermatocyte")]
    assert final_call(detection_class="round_spermatid", decisions=decisions, adjudication=None) is None
    assert agreement(decisions, "round_spermatid") == "disagree"


def test_explicit_class_equal_to_the_detected_one_agrees_with_no_change():
    decisions = [("accept", ""), ("accept", "round_spermatid")]
    assert final_call(detection_class="round_spermatid", decisions=decisions, adjudication=None).verdict == "accept"
    assert agreement(decisions, "round_spermatid") == "agree"


def test_uncertain_is_never_final_and_nothing_decided_is_open():
    assert final_call(detection_class="x", decisions=[("uncertain", "")], adjudication=None) is None
    assert final_call(detection_class="x", decisions=[], adjudication=None) is None
    assert agreement([], "x") == "none"
    assert agreement([("accept", "")], "x") == "single"

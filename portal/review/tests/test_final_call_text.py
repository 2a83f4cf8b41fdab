from django.utils import translation

from portal.review.lib.finalcall import FINAL_CALL_RULE
from portal.review.views import FINAL_CALL_RULE_TEXT


def test_the_pages_final_call_rule_is_the_exports_rule_in_english_and_translated_in_chinese():
    with translation.override("en"):
        assert str(FINAL_CALL_RULE_TEXT) == FINAL_CALL_RULE
    with translation.override("zh-hans"):
        assert "最终判定" in str(FINAL_CALL_RULE_TEXT)

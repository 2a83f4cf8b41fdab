"""Evaluation: COCO bbox/segm AP per class, and round_spermatid precision/recall/F1, confusion matrix,
precision–recall curve."""
from .clinic import class_prf, confusion_matrix, plot_pr_curve
from .coco_eval import coco_evaluate
from .evaluator import (
                        evaluate_bundle,
                        evaluate_model_files,
                        evaluate_predictions,
                        evaluate_predictor,
                        predict_dataset,
                        summary_text,
)

__all__ = ["class_prf", "coco_evaluate", "confusion_matrix", "evaluate_bundle", "evaluate_model_files",
           "evaluate_predictions", "evaluate_predictor", "plot_pr_curve", "predict_dataset", "summary_text"]

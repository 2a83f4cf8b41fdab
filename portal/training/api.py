"""Training API: jobs (start, list, detail, progress, cancel), model cards, the promotion gate, signed
promotion and rollback, re-analysis."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.access import IsCenterMember, access_center, access_centers
from portal.centers.policy import Action
from portal.core.pagination import Pagination
from portal.core.serializers import JsonInputSerializer
from portal.datasets.access import access_dataset_version
from portal.imaging.access import access_session
from portal.jobs.models import JobStatus
from portal.mlmodels.access import access_model_version
from portal.training import promotion, selectors, services
from portal.training.access import access_candidate, access_training_job
from portal.training.cards import model_card


class TrainingJobOutput(serializers.Serializer):
    id = serializers.UUIDField()
    center_id = serializers.UUIDField()
    dataset_version_id = serializers.UUIDField()
    base_model_id = serializers.UUIDField(allow_null=True)
    options = serializers.DictField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    stage = serializers.CharField()
    iteration = serializers.IntegerField()
    max_iter = serializers.IntegerField()
    attempts = serializers.IntegerField()
    eta_seconds = serializers.FloatField(allow_null=True)
    resumed_from = serializers.ListField(child=serializers.IntegerField())
    cancel_requested = serializers.BooleanField()
    error_message = serializers.CharField()
    candidate_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainingOptionsInput(JsonInputSerializer):
    iterations = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
    base_lr = serializers.FloatField(required=False, min_value=1e-6, max_value=1.0)
    image_scale = serializers.IntegerField(required=False, min_value=0, max_value=2048,
                                           help_text="Short edge in px while training; 0: the engine's default.")
    checkpoint_period = serializers.IntegerField(required=False, min_value=1, max_value=100_000)


class TrainingJobListApi(APIView):
    """Training jobs of the user's centers; POST starts one (center admins)."""

    permission_classes = [IsCenterMember]
    pagination_class = Pagination  # the schema shows the page envelope

    class TrainingJobCreateInputSerializer(JsonInputSerializer):
        dataset_version_id = serializers.UUIDField()
        base_model_id = serializers.UUIDField(required=False, allow_null=True,
                                              help_text="A registered version to fine-tune; empty: from scratch.")
        options = TrainingOptionsInput(required=False, help_text="Defaults fit the CPU worker.")

    @extend_schema(responses=TrainingJobOutput(many=True))
    def get(self, request):
        access_centers(user=request.user, action=Action.TRAINING_READ)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.training_job_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(TrainingJobOutput(page, many=True).data)

    @extend_schema(request=TrainingJobCreateInputSerializer, responses={201: TrainingJobOutput})
    def post(self, request):
        data = self.TrainingJobCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        raw = request.data.get("options") if isinstance(request.data.get("options"), dict) else {}
        options = {**raw, **(data.validated_data.get("options") or {})}  # unknown names: refused by the service
        version = access_dataset_version(user=request.user, id=data.validated_data["dataset_version_id"],
                                         action=Action.TRAINING_RUN)
        base = None
        if data.validated_data.get("base_model_id"):
            base = access_model_version(user=request.user, id=data.validated_data["base_model_id"])
        job = services.training_job_create(user=request.user, dataset_version=version, base_model=base,
                                           options=options, request=request)
        return Response(TrainingJobOutput(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailApi(APIView):
    """One training job."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=TrainingJobOutput)
    def get(self, request, training_job_id):
        return Response(TrainingJobOutput(access_training_job(user=request.user, id=training_job_id)).data)


class TrainingProgressOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    stage = serializers.CharField()
    iteration = serializers.IntegerField()
    max_iter = serializers.IntegerField()
    losses = serializers.ListField(child=serializers.DictField())
    seconds_per_iter = serializers.FloatField(allow_null=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    elapsed_seconds = serializers.FloatField(allow_null=True)
    attempts = serializers.IntegerField()
    resumed_from = serializers.ListField(child=serializers.IntegerField())
    cancel_requested = serializers.BooleanField()
    error_message = serializers.CharField()
    candidate_id = serializers.UUIDField(allow_null=True)
    active = serializers.BooleanField(help_text="True while queued or running: keep polling.")


class TrainingJobProgressApi(APIView):
    """Live progress of a training job (iteration, losses, ETA): what the job page polls."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=TrainingProgressOutput)
    def get(self, request, training_job_id):
        job = access_training_job(user=request.user, id=training_job_id)
        return Response(TrainingProgressOutput(services.training_progress(job)).data)


class TrainingJobCancelApi(APIView):
    """Cancel a training job: a queued one at once, a running one at its next iteration."""

    permission_classes = [IsCenterMember]

    @extend_schema(request=None, responses=TrainingJobOutput)
    def post(self, request, training_job_id):
        job = access_training_job(user=request.user, id=training_job_id, action=Action.TRAINING_RUN)
        return Response(TrainingJobOutput(services.training_job_cancel(job=job, user=request.user,
                                                                       request=request)).data)


class ModelCardApi(APIView):
    """A model version's card: metrics on its dataset's frozen test split and per center, training data
    summary, config and weights sha256."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, model_version_id):
        model_version = access_candidate(user=request.user, id=model_version_id)
        return Response(model_card(model_version, user=request.user))


class GateQuerySerializer(serializers.Serializer):
    center_id = serializers.UUIDField(help_text="The center whose active model the candidate would replace.")


class ModelGateApi(APIView):
    """The promotion gate of a candidate for a center: RS AP50 paired bootstrap and per-class AP, side by side."""

    permission_classes = [IsCenterMember]

    @extend_schema(parameters=[GateQuerySerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request, model_version_id):
        query = GateQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        candidate = access_candidate(user=request.user, id=model_version_id)
        center = access_center(user=request.user, id=query.validated_data["center_id"], action=Action.TRAINING_READ)
        return Response(promotion.promotion_gate(candidate=candidate, center=center))


class SignatureInputSerializer(JsonInputSerializer):
    center_id = serializers.UUIDField()
    password = serializers.CharField(help_text="The administrator's password (e-signature).")


class PromotionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    center_id = serializers.UUIDField()
    model_version_id = serializers.UUIDField()
    previous_model_version_id = serializers.UUIDField(allow_null=True)
    gate = serializers.DictField()
    meaning = serializers.CharField()
    created_at = serializers.DateTimeField()


class ModelPromoteApi(APIView):
    """Promote a candidate to a center's active model: the gate must pass; e-signed with the password."""

    permission_classes = [IsCenterMember]

    @extend_schema(request=SignatureInputSerializer, responses={201: PromotionOutput})
    def post(self, request, model_version_id):
        data = SignatureInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        candidate = access_candidate(user=request.user, id=model_version_id, action=Action.MODELS_PROMOTE)
        center = access_center(user=request.user, id=data.validated_data["center_id"], action=Action.MODELS_PROMOTE)
        row = promotion.model_promote(user=request.user, candidate=candidate, center=center,
                                      password=data.validated_data["password"], request=request)
        return Response(PromotionOutput(row).data, status=status.HTTP_201_CREATED)


class CenterRollbackApi(APIView):
    """Return a center to the model active before its last promotion; e-signed with the password."""

    permission_classes = [IsCenterMember]

    class RollbackInputSerializer(JsonInputSerializer):
        password = serializers.CharField()

    @extend_schema(request=RollbackInputSerializer, responses={201: PromotionOutput})
    def post(self, request, center_id):
        data = self.RollbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        center = access_center(user=request.user, id=center_id, action=Action.MODELS_PROMOTE)
        row = promotion.model_rollback(user=request.user, center=center, password=data.validated_data["password"],
                                       request=request)
        return Response(PromotionOutput(row).data, status=status.HTTP_201_CREATED)


class ReanalyseApi(APIView):
    """Analyse chosen sessions again with their center's active model (new result sets; old ones kept)."""

    permission_classes = [IsCenterMember]

    class ReanalyseInputSerializer(JsonInputSerializer):
        session_ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=200)

    class ReanalyseOutputSerializer(serializers.Serializer):
        job_ids = serializers.ListField(child=serializers.UUIDField())

    @extend_schema(request=ReanalyseInputSerializer, responses={201: ReanalyseOutputSerializer})
    def post(self, request):
        data = self.ReanalyseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sessions = [access_session(user=request.user, id=i, action=Action.TRAINING_RUN)
                    for i in dict.fromkeys(data.validated_data["session_ids"])]
        jobs = promotion.sessions_reanalyse(user=request.user, sessions=sessions, request=request)
        return Response({"job_ids": [str(j.pk) for j in jobs]}, status=status.HTTP_201_CREATED)

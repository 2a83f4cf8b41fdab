"""Jobs API: create for a session, list, detail with per-image progress, cancel, session progress."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.access import IsCenterMember
from portal.centers.policy import Action
from portal.core.pagination import Pagination
from portal.core.serializers import JsonInputSerializer
from portal.imaging.access import access_session
from portal.jobs import selectors, services
from portal.jobs.access import access_job
from portal.jobs.models import InferenceJob, JobImageStatus, JobStatus
from portal.mlmodels.access import access_model_version


class JobImageOutput(serializers.Serializer):
    image_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JobImageStatus.choices)
    attempts = serializers.IntegerField()
    seconds = serializers.FloatField(allow_null=True)
    error_message = serializers.CharField()
    result_set_id = serializers.UUIDField(allow_null=True)


class JobOutput(serializers.Serializer):
    id = serializers.UUIDField()
    center_id = serializers.UUIDField()
    session_id = serializers.UUIDField()
    model_version_id = serializers.UUIDField(required=False, help_text="Left out for users blinded from a session.")
    model_version = serializers.CharField(source="model_version.__str__", required=False,
                                          help_text="Left out for users blinded from a session.")
    parameters = serializers.DictField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    attempts = serializers.IntegerField()
    images_total = serializers.IntegerField()
    images_done = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    triggered_by = serializers.CharField()
    error_message = serializers.CharField()
    worker_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)


class JobDetailOutput(JobOutput):
    images = serializers.SerializerMethodField()

    @extend_schema_field(JobImageOutput(many=True))
    def get_images(self, job: InferenceJob) -> list[dict]:
        sets = {rs.image_id: rs.pk for rs in job.result_sets.all()}
        return JobImageOutput([
            {"image_id": ji.image_id, "status": ji.status, "attempts": ji.attempts, "seconds": ji.seconds,
             "error_message": ji.error_message, "result_set_id": sets.get(ji.image_id)}
            for ji in job.job_images.all()
        ], many=True).data


MODEL_FIELDS = ("model_version_id", "model_version")


def _out(serializer_class, user, obj, *, many: bool = False):
    """Serialized jobs; no model name or id for a user blinded from any session."""
    data = serializer_class(obj, many=many).data
    if not selectors.user_sees_model_names(user):
        for row in (data if many else [data]):
            for name in MODEL_FIELDS:
                row.pop(name, None)
    return data


@extend_schema_field({
    "type": "object", "additionalProperties": False,
    "properties": {name: {"type": "integer" if kind is int else "number", "minimum": low, "maximum": high,
                          "nullable": True}
                   for name, (kind, low, high) in services.PARAMETER_SPEC.items()},
})
class JobParametersField(serializers.DictField):
    """Job parameters: the names and ranges of ``services.PARAMETER_SPEC`` (checked there), nothing else."""


class JobListApi(APIView):
    """Jobs of the user's centers (filter by ``session`` and ``status``); POST starts an analysis."""

    permission_classes = [IsCenterMember]
    pagination_class = Pagination

    class JobCreateInputSerializer(JsonInputSerializer):
        session_id = serializers.UUIDField()
        model_version_id = serializers.UUIDField(required=False, allow_null=True,
                                                 help_text="Default: the center's active model.")
        image_ids = serializers.ListField(child=serializers.UUIDField(), required=False, min_length=1,
                                          help_text="Default: every image of the session.")
        parameters = JobParametersField(required=False, help_text="score_threshold (0–1), tile_size (px).")

    class JobFilterSerializer(serializers.Serializer):
        session = serializers.UUIDField(required=False, help_text="Only this session's jobs.")
        status = serializers.ChoiceField(choices=JobStatus.choices, required=False, allow_blank=True)

    @extend_schema(parameters=[JobFilterSerializer], responses=JobOutput(many=True))
    def get(self, request):
        filters = self.JobFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        rows = selectors.job_list(user=request.user, session_id=filters.validated_data.get("session"),
                                  status=filters.validated_data.get("status") or None)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(_out(JobOutput, request.user, page, many=True))

    @extend_schema(request=JobCreateInputSerializer, responses={201: JobDetailOutput})
    def post(self, request):
        data = self.JobCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = access_session(user=request.user, id=data.validated_data["session_id"], action=Action.JOBS_RUN)
        model_version = None
        if data.validated_data.get("model_version_id"):
            model_version = access_model_version(user=request.user, id=data.validated_data["model_version_id"])
        job = services.job_create(session=session, user=request.user, model_version=model_version,
                                  image_ids=data.validated_data.get("image_ids"),
                                  parameters=data.validated_data.get("parameters"), request=request)
        return Response(_out(JobDetailOutput, request.user, access_job(user=request.user, id=job.pk)),
                        status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    """One job with per-image progress and the result set each image produced."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=JobDetailOutput)
    def get(self, request, job_id):
        return Response(_out(JobDetailOutput, request.user, access_job(user=request.user, id=job_id)))


class JobCancelApi(APIView):
    """Cancel a job: a queued job at once, a running one before its next image."""

    permission_classes = [IsCenterMember]

    @extend_schema(request=None, responses=JobDetailOutput)
    def post(self, request, job_id):
        services.job_cancel(job=access_job(user=request.user, id=job_id, action=Action.JOBS_RUN), user=request.user,
                            request=request)
        return Response(_out(JobDetailOutput, request.user, access_job(user=request.user, id=job_id)))


class SessionJobImageProgressSerializer(serializers.Serializer):
    image_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JobImageStatus.choices)
    scale_status = serializers.CharField(help_text="How the image reached the model ('' before it is done).")
    scale_warning = serializers.CharField(help_text="Shown to users when not empty.")

class SessionJobProgressSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    model_version = serializers.CharField(required=False, help_text="Left out for users blinded from a session.")
    images_total = serializers.IntegerField()
    images_done = serializers.IntegerField()
    attempts = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    error_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    images = SessionJobImageProgressSerializer(many=True)

class SessionJobsOutputSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    active = serializers.BooleanField(help_text="True while a job is queued or running: keep polling.")
    jobs = SessionJobProgressSerializer(many=True)


def _images_progress(job: InferenceJob) -> list[dict]:
    scales = {rs.image_id: rs for rs in job.result_sets.all()}
    rows = []
    for ji in job.job_images.all():
        rs = scales.get(ji.image_id)
        rows.append({"image_id": str(ji.image_id), "status": ji.status,
                     "scale_status": rs.scale_status if rs else "", "scale_warning": rs.scale_warning if rs else ""})
    return rows


class SessionJobsProgressApi(APIView):
    """Latest jobs of a session with per-image status: what the session page polls."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=SessionJobsOutputSerializer)
    def get(self, request, session_id):
        session = access_session(user=request.user, id=session_id, action=Action.JOBS_READ)
        jobs = selectors.session_jobs_progress(user=request.user, session_id=session.pk)
        named = selectors.user_sees_model_names(request.user)
        payload = [
            {"id": str(job.pk), "status": job.status, **({"model_version": str(job.model_version)} if named else {}),
             "images_total": job.images_total, "images_done": job.images_done, "attempts": job.attempts,
             "cancel_requested": job.cancel_requested, "error_message": job.error_message,
             "created_at": job.created_at.isoformat(),
             "images": _images_progress(job)}
            for job in jobs
        ]
        return Response({"session_id": str(session.pk),
                         "active": any(j["status"] in ("queued", "running") for j in payload), "jobs": payload})

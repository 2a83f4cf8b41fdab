"""Jobs API: create for a session, list, detail with per-image progress, cancel, session progress."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.pagination import Pagination
from portal.core.serializers import JsonInputSerializer
from portal.jobs import selectors, services
from portal.jobs.models import InferenceJob, JobImageStatus, JobStatus
from portal.jobs.permissions import IsCenterMember
from portal.mlmodels.selectors import model_version_get


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
    model_version_id = serializers.UUIDField()
    model_version = serializers.CharField(source="model_version.__str__")
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


def _job_or_404(user, job_id) -> InferenceJob:
    job = selectors.job_get(user=user, job_id=job_id)
    if job is None:
        raise Http404
    return job


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
        parameters = serializers.DictField(required=False, help_text="score_threshold (0–1), tile_size (px).")

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
        return paginator.get_paginated_response(JobOutput(page, many=True).data)

    @extend_schema(request=JobCreateInputSerializer, responses={201: JobDetailOutput})
    def post(self, request):
        data = self.JobCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = selectors.session_for_user(user=request.user, session_id=data.validated_data["session_id"])
        if session is None:
            raise Http404
        model_version = None
        if data.validated_data.get("model_version_id"):
            model_version = model_version_get(user=request.user,
                                              model_version_id=data.validated_data["model_version_id"])
            if model_version is None:
                raise Http404
        images = None
        if "image_ids" in data.validated_data:
            images = list(session.images.filter(pk__in=data.validated_data["image_ids"]))
            if len(images) != len(set(data.validated_data["image_ids"])):
                raise Http404
        job = services.job_create(session=session, user=request.user, model_version=model_version,
                                  images=images, parameters=data.validated_data.get("parameters"),
                                  request=request)
        return Response(JobDetailOutput(_job_or_404(request.user, job.pk)).data, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    """One job with per-image progress and the result set each image produced."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=JobDetailOutput)
    def get(self, request, job_id):
        return Response(JobDetailOutput(_job_or_404(request.user, job_id)).data)


class JobCancelApi(APIView):
    """Cancel a job: a queued job at once, a running one before its next image."""

    permission_classes = [IsCenterMember]

    @extend_schema(request=None, responses=JobDetailOutput)
    def post(self, request, job_id):
        services.job_cancel(job=_job_or_404(request.user, job_id), user=request.user, request=request)
        return Response(JobDetailOutput(_job_or_404(request.user, job_id)).data)


class SessionJobImageProgressSerializer(serializers.Serializer):
    image_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JobImageStatus.choices)

class SessionJobProgressSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    model_version = serializers.CharField()
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


class SessionJobsProgressApi(APIView):
    """Latest jobs of a session with per-image status: what the session page polls."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=SessionJobsOutputSerializer)
    def get(self, request, session_id):
        session = selectors.session_for_user(user=request.user, session_id=session_id)
        if session is None:
            raise Http404
        jobs = selectors.session_jobs_progress(user=request.user, session_id=session.pk)
        payload = [
            {"id": str(job.pk), "status": job.status, "model_version": str(job.model_version),
             "images_total": job.images_total, "images_done": job.images_done, "attempts": job.attempts,
             "cancel_requested": job.cancel_requested, "error_message": job.error_message,
             "created_at": job.created_at.isoformat(),
             "images": [{"image_id": str(ji.image_id), "status": ji.status} for ji in job.job_images.all()]}
            for job in jobs
        ]
        return Response({"session_id": str(session.pk),
                         "active": any(j["status"] in ("queued", "running") for j in payload), "jobs": payload})

"""The regions use case: Segment Anything clicks to masks, instances, undo, region proposals and
embeddings ahead of time. Built from injected parts (`ports`), answering typed results (`results`)."""

from core.segment.view import colour as instance_colour
from core.usecases.regions.ports import CropClassifier, Jobs, Thumbnails
from core.usecases.regions.regions import DISPLAY_SIDE, Regions
from core.usecases.regions.results import (
    CandidateMask,
    EmbedReport,
    ImageInfo,
    ImageRegions,
    InstanceInfo,
    LabelScore,
    ProposalDecision,
    ProposalInfo,
    ProposeSummary,
    RleMask,
    RleSegmentation,
    Segmentation,
    UndoResult,
    as_json,
    data_url,
)
from core.usecases.regions.runtime import OVERLAY_SIDE

__all__ = [
    "DISPLAY_SIDE", "OVERLAY_SIDE", "CandidateMask", "CropClassifier", "EmbedReport", "ImageInfo", "ImageRegions",
    "InstanceInfo", "Jobs", "LabelScore", "ProposalDecision", "ProposalInfo", "ProposeSummary", "Regions", "RleMask",
    "RleSegmentation", "Segmentation", "Thumbnails", "UndoResult", "as_json", "data_url", "instance_colour",
]

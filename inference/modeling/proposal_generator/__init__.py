"""Proposal generators: anchors and the RPN."""
from .anchor_generator import DefaultAnchorGenerator, generate_cell_anchors
from .rpn import RPN, StandardRPNHead, find_top_rpn_proposals

__all__ = ["DefaultAnchorGenerator", "generate_cell_anchors", "RPN", "StandardRPNHead", "find_top_rpn_proposals"]

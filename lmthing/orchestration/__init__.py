"""Orchestration: workflows, pipelines, parallel groups, plans and agent teams.

Engine-neutral, like ``lmthing.prompt``: nothing here imports temporalio. Inside a prompt
run the same nodes run durably (agents as child workflows, tools as activities, timeouts as
durable timers); ``lmthing.def_workflow`` and its siblings make standalone workflow types of
them. See docs/orchestration.md.
"""

from .context import Context, DefinitionError, OrchestrationFailed, StepFailed
from .graph import END, PipelineResult, Step, StepRun, WorkflowResult, pipeline, step, workflow
from .nodes import call_agent, call_tool, choose, loop_while, sequence, task
from .parallel import AGGREGATIONS, ParallelResult, parallel
from .plugin import orchestration_plugin
from .teams import Ballot, Contribution, Team, TeamResult, TeamTask

team = Team  # team(name, members, lead=..., judge=...) reads like the other builders

__all__ = [
    "AGGREGATIONS", "END", "Ballot", "Context", "Contribution", "DefinitionError", "OrchestrationFailed",
    "ParallelResult", "PipelineResult", "Step", "StepFailed", "StepRun", "Team", "TeamResult", "TeamTask",
    "WorkflowResult", "call_agent", "call_tool", "choose", "loop_while", "orchestration_plugin", "parallel",
    "pipeline", "sequence", "step", "task", "team", "workflow",
]

"""A blackboard as a workflow (``lmthing.board``, id ``lmthing-board:<name>``).

Agents write through the ``write`` update (started on first use); a compare-and-set write
that expects another version is refused by the validator with the board's current version
(``BoardConflict``), so a refused write leaves no trace and changes nothing. The ``contents``
query reads the board. Every accepted write is an update in the history, with its writer:
that history is the board's audit trail. It continues as new when Temporal suggests it.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from lmthing.activities.names import BOARD_WORKFLOW
from lmthing.messaging.board import BoardCarry, BoardConflict, BoardEntry, BoardState, BoardWrite


@workflow.defn(name=BOARD_WORKFLOW)
class BoardWorkflow:
    @workflow.init
    def __init__(self, carry: Any) -> None:
        self._state = BoardState(BoardCarry.model_validate(carry))

    @workflow.run
    async def run(self, carry: Any) -> None:
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state.carry().model_dump(mode="json"))

    @workflow.update
    def write(self, write: Any) -> BoardEntry | None:
        """``{"key", "value", "expected_version"?, "writer"?, "delete"?}``: the new entry
        (None for a delete)."""
        return self._state.apply(BoardWrite.model_validate(write))

    @write.validator
    def _check_write(self, write: Any) -> None:
        try:
            self._state.check(BoardWrite.model_validate(write))
        except BoardConflict as err:
            raise ApplicationError(str(err), type="BoardConflict", non_retryable=True) from None
        except ValueError as err:  # a pydantic ValidationError is one too
            raise ApplicationError(f"Invalid board write: {err}", type="InvalidBoardWrite", non_retryable=True) from None

    @workflow.query
    def contents(self) -> dict[str, BoardEntry]:
        return self._state.contents()

    @workflow.query
    def entry(self, key: str) -> BoardEntry | None:
        return self._state.contents().get(key)

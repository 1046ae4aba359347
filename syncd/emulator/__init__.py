"""A local, faithful OpenAI Files server (``syncd emulator``) for tests, demos and trying syncd.

It serves the eleven operations of the contract (Files, Assistant files, Message files; Assistants
v1) plus the assistant, thread and message operations that make attachments possible, with the
real service's error bodies, limits, pagination and id formats, and can inject faults.
"""

from syncd.emulator.faults import Faults
from syncd.emulator.server import EmulatorServer

__all__ = ["EmulatorServer", "Faults"]

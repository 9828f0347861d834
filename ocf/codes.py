"""The OCF exit codes and the agent's one error type. Standard library only: every action,
monitor included, imports it."""

OCF_SUCCESS, OCF_ERR_GENERIC, OCF_ERR_ARGS, OCF_ERR_UNIMPLEMENTED = 0, 1, 2, 3
OCF_ERR_PERM, OCF_ERR_INSTALLED, OCF_ERR_CONFIGURED, OCF_NOT_RUNNING = 4, 5, 6, 7


class AgentError(Exception):
    """An action cannot do what it was asked: `code` is what the agent exits with, the
    message is the exit reason Pacemaker shows (crm_mon, pcs status)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code

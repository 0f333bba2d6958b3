# The part of the `opaque` binding (ctypes over libopaque, without types of its own) that Cypher calls.

class Ids:
    def __init__(self, idu: bytes | None = None, ids: bytes | None = None) -> None: ...

def CreateRegistrationResponse(request: bytes, skS: bytes | None = None) -> tuple[bytes, bytes]: ...  # noqa: N802
def StoreUserRecord(sec: bytes, reg_rec: bytes) -> bytes: ...  # noqa: N802
def CreateCredentialResponse(pub: bytes, rec: bytes, ids: Ids, ctx: bytes) -> tuple[bytes, bytes, bytes]: ...  # noqa: N802
def UserAuth(authU0: bytes, authU: bytes) -> None: ...  # noqa: N802, N803

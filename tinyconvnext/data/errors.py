"""The errors of the data layer: every one names the file, what was expected and what was found."""


class DataError(ValueError):
    """A data set file that is corrupt, truncated, incomplete or not the one expected."""


class ChecksumError(DataError):
    """A file whose MD5 or SHA-256 differs from the published one."""


class DataNotFoundError(DataError, FileNotFoundError):
    """None of the known file or folder names of a data set is where we looked."""

import chronopype
import chronopype_testing


def test_packages_import() -> None:
    assert chronopype.__doc__
    assert chronopype_testing.__doc__

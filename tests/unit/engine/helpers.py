"""Small builders shared by the engine's unit tests."""
from execplanner.engine import Calendar, Resources

GI = 1 << 30
H = 3600


def vec(cores, gib=1, gpu=0):
    return Resources(int(cores * 1000), int(gib * GI), gpu, 0, 1)


def cluster(*sizes):
    """A calendar with one node per size (cores), 64Gi each."""
    cal = Calendar()
    for i, cores in enumerate(sizes):
        cal.set_node(f"n{i}", Resources(cores * 1000, 64 * GI, 0, 0, 110))
    return cal

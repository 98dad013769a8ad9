"""sokhoe — the shared lifelong health record (*sổ sức khỏe*) for every person in Vietnam."""

__version__ = "0.1.0"

SERVER_SOFTWARE = "Palisade"
__version__ = "0.1.0"

"""Crystal datasets on the `datasets` library: loaders, Hub layout, featurization, collators."""

from hfmat.data.graph import GraphCollator, GraphError, graph_to_structure, structure_to_graph

__all__ = ["GraphCollator", "GraphError", "graph_to_structure", "structure_to_graph"]

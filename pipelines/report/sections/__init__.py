"""One module per source with a section in the report, named by the source's registry entry
(``SourceSpec.report``): ``section(page) -> Section``."""

"""Reports and exports: lot and site PDFs, Excel workbooks, streamed CSVs, batch ZIPs,
traceability certificates. `data` reads, `charts`/`pdf`/`xlsx`/`csv_export`/`certificate` render,
`runs` ties them to the file store (domain/platform/files.py) and returns the jobs' results."""

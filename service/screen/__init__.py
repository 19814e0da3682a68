"""Population screening (`spinefoot screen`): every patient of a Bulk Data export, assessed.

export.py     find and read the export's NDJSON files (folder, manifest, .gz)
patient.py    the per-patient module every engine shares: key, bundle, assess, output line
partition.py  split the export by patient into on-disk partitions (hash of the patient id)
local.py      the default engine: partitions assessed in a process pool, resumable
spark_job.py  the same work as a Spark job (RDD API), local[N] or on a cluster
output.py     RiskAssessment/OperationOutcome NDJSON, manifest.json and summary.json
bulk.py       a Bulk Data client: kick-off, polling, downloads (SMART Backend Services auth)
command.py    the `screen` subcommand
"""

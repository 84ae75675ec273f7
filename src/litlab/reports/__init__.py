"""Reports over the runs of a sweep or study: tables and figures (the scripts are thin command lines over them)."""

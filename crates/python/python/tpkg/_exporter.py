class PackageExporter:
    pass

"""concurrency_limits is small and rarely written, so autovacuum may never analyse it; the
claim's plan then prices it from a default guess and gets slow on a large history. Analyse
it now and after any change of a row (docs/engine.md)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("execution", "0010_secret_access_and_api_tokens")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE concurrency_limits SET (autovacuum_analyze_threshold = 1, "
            "autovacuum_analyze_scale_factor = 0); ANALYZE concurrency_limits;",
            reverse_sql="ALTER TABLE concurrency_limits RESET (autovacuum_analyze_threshold, "
            "autovacuum_analyze_scale_factor);",
        )
    ]

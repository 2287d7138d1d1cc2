"""Receipt printers: ESC/POS receipts over python-escpos connectors, status and spool."""

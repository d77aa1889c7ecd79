//! Operating-system glue (Linux). Other Unixes can follow by adding siblings here.
